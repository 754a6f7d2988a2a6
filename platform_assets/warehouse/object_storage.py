"""Object storage: the lake's files (``PLATFORM_LAKE_DATA_PATH=s3://bucket/prefix/``) and the landing zone's
(``PLATFORM_LANDING_URL=s3://landing/``, ``storage.py``).

A process's S3 identity comes from its environment, in the variables every AWS tool reads:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN`` for temporary
credentials), ``AWS_REGION``, and ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for an
S3-compatible server such as SeaweedFS or MinIO. So credentials never sit in a file of the
project, and each role (a worker that writes, a reader that may only read) runs with its own
identity. They become a temporary DuckDB secret of this process only, never logged.
"""

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

DEFAULT_REGION = "us-east-1"


class MissingCredentials(ValueError):
    """The data path is on S3 but the environment names no identity."""


def is_s3(data_path: str) -> bool:
    return data_path.startswith(("s3://", "s3a://"))


def s3_secret_sql(env: Mapping[str, str] = os.environ) -> str:
    """``CREATE TEMPORARY SECRET`` for DuckDB's httpfs from the AWS variables of ``env``."""
    key, secret = _identity(env)
    options = {"KEY_ID": key, "SECRET": secret, "REGION": _region(env)}
    if env.get("AWS_SESSION_TOKEN"):
        options["SESSION_TOKEN"] = env["AWS_SESSION_TOKEN"]
    endpoint = _endpoint(env)
    if endpoint:  # an S3-compatible server: addressed by host and port, buckets in the path
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options.update(ENDPOINT=parts.netloc, URL_STYLE="path", USE_SSL=parts.scheme == "https")
    rendered = ", ".join(f"{name} {_literal(value)}" for name, value in options.items())
    return f"CREATE OR REPLACE TEMPORARY SECRET platform_lake_s3 (TYPE s3, {rendered})"


def s3fs_options(env: Mapping[str, str] = os.environ) -> dict:
    """The same identity for s3fs (the landing zone's files), never looked up anywhere else.

    Explicit keys keep s3fs from asking the network for an instance role, and give each
    identity its own cached filesystem. Listings are never cached: the landing sensor must
    see what is in the bucket now.
    """
    key, secret = _identity(env)
    options = {"key": key, "secret": secret, "token": env.get("AWS_SESSION_TOKEN"), "use_listings_cache": False,
               "client_kwargs": {"region_name": _region(env)}}
    endpoint = _endpoint(env)
    if endpoint:
        options["endpoint_url"] = endpoint if "://" in endpoint else f"https://{endpoint}"
    return options


def _identity(env: Mapping[str, str]) -> tuple[str, str]:
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise MissingCredentials("a path is on S3, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set: "
                                 "give this process its S3 identity in the environment")
    return key, secret


def _region(env: Mapping[str, str]) -> str:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def _endpoint(env: Mapping[str, str]) -> str | None:
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")


def _literal(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "'" + str(value).replace("'", "''") + "'"
