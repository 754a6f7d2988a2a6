"""A few rows that break a row-level contract check, to show next to its result.

soda-core counts failing rows but keeps no sample without Soda Cloud's
diagnostics warehouse, so the sample is a small query built from the same
contract: the check's own condition under the contract's filter.
"""

from platform_assets.quality.contracts import Contract, ContractCheck

SAMPLE_ROWS = 5


def failing_rows_query(contract: Contract, check: ContractCheck, variables: dict[str, str]) -> str | None:
    """SQL returning up to SAMPLE_ROWS failing rows, or None for checks that are not about rows."""
    if check.check_type == "failed_rows" and "query" in check.spec:
        return _substitute(f"SELECT * FROM ({check.spec['query']}) LIMIT {SAMPLE_ROWS}", variables)
    condition = _condition(contract, check)
    if condition is None:
        return None
    scope = f"({contract.filter}) AND " if contract.filter else ""
    return _substitute(f"SELECT * FROM {contract.table} WHERE {scope}({condition}) LIMIT {SAMPLE_ROWS}", variables)


def _condition(contract: Contract, check: ContractCheck) -> str | None:
    spec, column = check.spec, f'"{check.column}"' if check.column else None
    if check.check_type == "missing":
        return f"{column} IS NULL"
    if check.check_type == "failed_rows":
        return spec["expression"]
    if check.check_type == "duplicate":
        columns = ", ".join(f'"{c}"' for c in spec["columns"])
        scope = f"WHERE {contract.filter} " if contract.filter else ""
        return f"({columns}) IN (SELECT {columns} FROM {contract.table} {scope}GROUP BY ALL HAVING count(*) > 1)"
    if check.check_type == "invalid":
        rules = []
        if "valid_values" in spec:
            rules.append(f"{column} NOT IN ({', '.join(_literal(v) for v in spec['valid_values'])})")
        if "valid_min" in spec:
            rules.append(f"{column} < {spec['valid_min']}")
        if "valid_max" in spec:
            rules.append(f"{column} > {spec['valid_max']}")
        if "valid_reference_data" in spec:
            reference = spec["valid_reference_data"]
            table = ".".join(reference["dataset"].split("/")[1:])
            rules.append(f'{column} NOT IN (SELECT "{reference["column"]}" FROM {table})')
        return f"{column} IS NOT NULL AND ({' OR '.join(rules)})" if rules else None
    return None


def _literal(value) -> str:
    return str(value) if isinstance(value, (int, float)) else "'" + str(value).replace("'", "''") + "'"


def _substitute(sql: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        sql = sql.replace(f"${{var.{name}}}", value.replace("'", "''"))
    return sql
