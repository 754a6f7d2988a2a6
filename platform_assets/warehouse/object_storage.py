"""The lake's files on object storage (``PLATFORM_LAKE_DATA_PATH=s3://bucket/prefix/``).

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
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise MissingCredentials("the lake's data path is on S3, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                                 "are not both set: give this process its S3 identity in the environment")
    options = {"KEY_ID": key, "SECRET": secret,
               "REGION": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION}
    if env.get("AWS_SESSION_TOKEN"):
        options["SESSION_TOKEN"] = env["AWS_SESSION_TOKEN"]
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:  # an S3-compatible server: addressed by host and port, buckets in the path
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options.update(ENDPOINT=parts.netloc, URL_STYLE="path", USE_SSL=parts.scheme == "https")
    rendered = ", ".join(f"{name} {_literal(value)}" for name, value in options.items())
    return f"CREATE OR REPLACE TEMPORARY SECRET platform_lake_s3 (TYPE s3, {rendered})"


def _literal(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "'" + str(value).replace("'", "''") + "'"
