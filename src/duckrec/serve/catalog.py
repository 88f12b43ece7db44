"""A pg_catalog good enough for BI introspection and psql's \\d, built per build.

DuckDB's own pg_catalog is partial (no pg_inherits or pg_rewrite, no relforcerowsecurity,
col_description and obj_description answer NULL for commented objects, pg_get_expr and
pg_get_viewdef refuse their arguments). So each reader gets a schema `memory.duckrec_pg` of
small tables filled from duckdb_tables(), duckdb_views(), duckdb_columns() and
duckdb_constraints() of the attached build, with the columns psql and SQLAlchemy's
postgresql dialect read, and macros for the functions they call; it is first on the search
path, and `rewrite` turns `pg_catalog.x` into `duckrec_pg.x` and PostgreSQL-only syntax
(OPERATOR(pg_catalog.~), COLLATE pg_catalog.default, ::regclass casts) into DuckDB's.
"""
from __future__ import annotations

import re

from duckrec.serve.wire import ARRAY_OF, NUMERIC, TYPE_SIZES, pg_type

SCHEMA = "duckrec_pg"
SERVER_VERSION = "15.0"

_TYPE_NAMES = {16: "bool", 17: "bytea", 20: "int8", 21: "int2", 23: "int4", 25: "text", 114: "json", 700: "float4",
               701: "float8", 1043: "varchar", 1082: "date", 1083: "time", 1114: "timestamp",
               1184: "timestamptz", 1186: "interval", 1700: "numeric", 2950: "uuid", 705: "unknown", 26: "oid",
               19: "name", 18: "char", 2205: "regclass"}
# format_type's names, as psql prints them
_FORMAT_NAMES = {16: "boolean", 17: "bytea", 20: "bigint", 21: "smallint", 23: "integer", 25: "text", 114: "json",
                 700: "real", 701: "double precision", 1043: "character varying", 1082: "date",
                 1083: "time without time zone", 1114: "timestamp without time zone",
                 1184: "timestamp with time zone", 1186: "interval", 1700: "numeric", 2950: "uuid", 26: "oid",
                 19: "name", 18: '"char"', 2205: "regclass"}

# empty catalogs that psql's \d and BI tools read: name -> columns
_EMPTY = {
    "pg_index": "indexrelid bigint, indrelid bigint, indisprimary boolean, indisunique boolean, indisclustered boolean,"
                " indisvalid boolean, indisreplident boolean, indkey integer[], indnatts integer, indnkeyatts integer,"
                " indexprs varchar, indpred varchar, indimmediate boolean, indnullsnotdistinct boolean, "
                "indoption integer[], indclass bigint[], indcollation bigint[]",
    "pg_inherits": "inhrelid bigint, inhparent bigint, inhseqno integer, inhdetachpending boolean",
    "pg_rewrite": "oid bigint, rulename varchar, ev_class bigint, ev_type varchar, ev_enabled varchar, "
                  "is_instead boolean",
    "pg_trigger": "oid bigint, tgrelid bigint, tgname varchar, tgfoid bigint, tgtype integer, tgenabled varchar, "
                  "tgisinternal boolean, tgconstraint bigint, tgparentid bigint, tgdeferrable boolean",
    "pg_policy": "oid bigint, polname varchar, polrelid bigint, polcmd varchar, polpermissive boolean, "
                 "polroles bigint[], polqual varchar, polwithcheck varchar",
    "pg_statistic_ext": "oid bigint, stxrelid bigint, stxname varchar, stxnamespace bigint, stxkeys integer[], "
                        "stxkind varchar[], stxstattarget integer, stxowner bigint",
    "pg_publication": "oid bigint, pubname varchar, puballtables boolean, pubinsert boolean, pubupdate boolean, "
                      "pubdelete boolean, pubtruncate boolean, pubviaroot boolean",
    "pg_publication_rel": "oid bigint, prpubid bigint, prrelid bigint, prqual varchar, prattrs integer[]",
    "pg_publication_namespace": "oid bigint, pnpubid bigint, pnnspid bigint",
    "pg_collation": "oid bigint, collname varchar, collnamespace bigint, collprovider varchar",
    "pg_foreign_table": "ftrelid bigint, ftserver bigint, ftoptions varchar[]",
    "pg_partitioned_table": "partrelid bigint, partstrat varchar, partnatts integer",
    "pg_enum": "oid bigint, enumtypid bigint, enumsortorder float, enumlabel varchar",
    "pg_sequence": "seqrelid bigint, seqtypid bigint, seqstart bigint, seqincrement bigint, seqmin bigint, "
                   "seqmax bigint, seqcache bigint, seqcycle boolean",
    "pg_depend": "classid bigint, objid bigint, objsubid integer, refclassid bigint, refobjid bigint, "
                 "refobjsubid integer, deptype varchar",
    "pg_extension": "oid bigint, extname varchar, extnamespace bigint, extversion varchar",
    "pg_proc": "oid bigint, proname varchar, pronamespace bigint, prorettype bigint, prokind varchar",
    "pg_range": "rngtypid bigint, rngsubtype bigint",
    "pg_opclass": "oid bigint, opcname varchar, opcmethod bigint, opcnamespace bigint, opcdefault boolean",
    "pg_operator": "oid bigint, oprname varchar, oprnamespace bigint",
}

_POPULATED = [
    # schemas of the attached build, and the two PostgreSQL ones clients look for
    f"""create table {SCHEMA}.pg_namespace as
        select oid::bigint as oid, schema_name as nspname, 10::bigint as nspowner, null::varchar[] as nspacl
        from duckdb_schemas() where database_name = 'warehouse'
          and schema_name not in ('pg_catalog', 'information_schema')
        union all select 11, 'pg_catalog', 10, null union all select 99, 'information_schema', 10, null""",
    f"""create table {SCHEMA}.relations as
        select table_oid::bigint as oid, table_name as relname, schema_oid::bigint as relnamespace, 'r' as relkind,
               column_count as relnatts, estimated_size::float as reltuples, comment, null::varchar as definition
        from duckdb_tables() where database_name = 'warehouse' and not temporary
        union all
        select view_oid, view_name, schema_oid, 'v', column_count, -1, comment, sql
        from duckdb_views() where database_name = 'warehouse' and not internal and not temporary""",
    f"""create table {SCHEMA}.pg_class as
        select oid, relname, relnamespace, relkind, 0::bigint as reltype, 10::bigint as relowner, 0::bigint as relam,
               relnatts::smallint as relnatts, reltuples, 0 as relpages, 0::smallint as relchecks,
               false as relhasindex, false as relhasrules, false as relhastriggers, false as relrowsecurity,
               false as relforcerowsecurity, false as relispartition, false as relhasoids, false as relisshared,
               false as relhassubclass, null::varchar[] as reloptions, 0::bigint as reltablespace,
               0::bigint as reloftype, 'p' as relpersistence, 'd' as relreplident, 0::bigint as reltoastrelid,
               0::bigint as relfilenode, null::varchar[] as relacl, null::varchar as relpartbound
        from {SCHEMA}.relations""",
    f"""create table {SCHEMA}.columns as
        select c.table_oid::bigint as attrelid, c.column_name as attname, c.column_index::smallint as attnum,
               c.data_type, not c.is_nullable as attnotnull, c.column_default, c.comment,
               c.numeric_precision, c.numeric_scale
        from duckdb_columns() c join {SCHEMA}.relations r on r.oid = c.table_oid
        where c.database_name = 'warehouse'""",
    f"""create table {SCHEMA}.pg_description as
        select oid as objoid, 1259::bigint as classoid, 0 as objsubid, comment as description
        from {SCHEMA}.relations where comment is not null and comment <> ''
        union all
        select attrelid, 1259, attnum, comment from {SCHEMA}.columns where comment is not null and comment <> ''""",
    f"""create table {SCHEMA}.pg_attrdef as
        select row_number() over ()::bigint as oid, attrelid as adrelid, attnum as adnum, column_default as adbin
        from {SCHEMA}.columns where column_default is not null""",
    f"""create table {SCHEMA}.pg_constraint as
        select (k.table_oid * 1000 + k.constraint_index)::bigint as oid, k.constraint_name as conname,
               k.schema_oid::bigint as connamespace,
               case k.constraint_type when 'PRIMARY KEY' then 'p' when 'UNIQUE' then 'u' when 'CHECK' then 'c'
                    when 'FOREIGN KEY' then 'f' else 'n' end as contype,
               k.table_oid::bigint as conrelid, 0::bigint as conindid, 0::bigint as confrelid,
               list_transform(k.constraint_column_indexes, lambda i: (i + 1)::smallint) as conkey,
               null::smallint[] as confkey, false as condeferrable, false as condeferred, true as convalidated,
               false as connoinherit, 0::bigint as conparentid, k.constraint_text as condef
        from duckdb_constraints() k where k.database_name = 'warehouse' and k.constraint_type <> 'NOT NULL'""",
    f"""create table {SCHEMA}.pg_am as select 2::bigint as oid, 'heap' as amname, 't' as amtype""",
    f"""create table {SCHEMA}.pg_database as
        select 1::bigint as oid, 'warehouse' as datname, 10::bigint as datdba, 6 as encoding,
               'C' as datcollate, 'C' as datctype, null::varchar as daticulocale, 'c' as datlocprovider,
               null::varchar as daticurules, true as datallowconn, false as datistemplate, -1 as datconnlimit,
               null::varchar[] as datacl, 0::bigint as dattablespace""",
    f"""create table {SCHEMA}.pg_tablespace as select 1663::bigint as oid, 'pg_default' as spcname""",
    f"""create table {SCHEMA}.pg_roles as
        select 10::bigint as oid, 'duckrec' as rolname, false as rolsuper, true as rolinherit, false as rolcreaterole,
               false as rolcreatedb, true as rolcanlogin, -1 as rolconnlimit, null::timestamp as rolvaliduntil""",
    f"""create table {SCHEMA}.pg_user as select 'duckrec' as usename, 10::bigint as usesysid, false as usesuper""",
    f"""create table {SCHEMA}.pg_settings as
        select 'server_version' as name, '{SERVER_VERSION}' as setting union all
        select 'max_identifier_length', '63' union all select 'standard_conforming_strings', 'on' union all
        select 'default_table_access_method', 'heap' union all select 'server_version_num', '150000' union all
        select 'search_path', '"$user", public' union all select 'transaction_read_only', 'on'""",
]


def _type_rows() -> str:
    """One row per type oid (subqueries on pg_type by oid must find one)."""
    rows = {oid: f"({oid}, '{name}', 11, {TYPE_SIZES.get(oid, -1)}, 'b', {ARRAY_OF.get(oid, 0)}, 0)"
            for oid, name in _TYPE_NAMES.items()}
    for elem, array in ARRAY_OF.items():
        rows.setdefault(array, f"({array}, '_{_TYPE_NAMES[elem]}', 11, -1, 'b', 0, {elem})")
    return ", ".join(rows.values())


def _format_type_case() -> str:
    whens = " ".join(f"when {oid} then '{name}'" for oid, name in _FORMAT_NAMES.items())
    arrays = " ".join(f"when {array} then '{_FORMAT_NAMES[elem]}[]'" for elem, array in ARRAY_OF.items())
    return f"case t {whens} {arrays} else 'text' end"


# a macro's arguments are pasted in as text: aliases inside macros (dr_*) must be names no
# caller uses, or `where c.oid = o` called with o := c.oid compares a column with itself
_MACROS = [
    f"create macro {SCHEMA}.format_type(t, m) as "
    f"case when t = {NUMERIC} and m > 4 then 'numeric(' || ((m - 4) >> 16) || ',' || ((m - 4) & 65535) || ')' "
    f"else {_format_type_case()} end",
    f"create macro {SCHEMA}.col_description(r, n) as (select description from {SCHEMA}.pg_description dr_d "
    "where dr_d.objoid = r and dr_d.objsubid = n)",
    f"create macro {SCHEMA}.obj_description(o) as (select description from {SCHEMA}.pg_description dr_d "
    "where dr_d.objoid = o and dr_d.objsubid = 0), "
    f"(o, c) as (select description from {SCHEMA}.pg_description dr_d where dr_d.objoid = o and dr_d.objsubid = 0)",
    f"create macro {SCHEMA}.shobj_description(o, c) as null::varchar",
    f"create macro {SCHEMA}.pg_get_expr(e, r) as e::varchar, (e, r, p) as e::varchar",
    f"create macro {SCHEMA}.pg_get_viewdef(o) as (select definition from {SCHEMA}.relations dr_r where dr_r.oid = o), "
    f"(o, p) as (select definition from {SCHEMA}.relations dr_r where dr_r.oid = o)",
    f"create macro {SCHEMA}.pg_get_constraintdef(o) as (select condef from {SCHEMA}.pg_constraint dr_k "
    f"where dr_k.oid = o), (o, p) as (select condef from {SCHEMA}.pg_constraint dr_k where dr_k.oid = o)",
    f"create macro {SCHEMA}.pg_get_indexdef(o) as null::varchar, (o, n, p) as null::varchar",
    f"create macro {SCHEMA}.pg_get_ruledef(o) as null::varchar, (o, p) as null::varchar",
    f"create macro {SCHEMA}.pg_get_partkeydef(o) as null::varchar",
    f"create macro {SCHEMA}.pg_get_statisticsobjdef_columns(o) as null::varchar",
    f"create macro {SCHEMA}.pg_relation_is_publishable(o) as false",
    f"create macro {SCHEMA}.pg_get_serial_sequence(t, c) as null::varchar",
    f"create macro {SCHEMA}.pg_collation_is_visible(o) as true",
    f"create macro {SCHEMA}.pg_table_size(o) as (select greatest(reltuples, 0)::bigint * 8 from {SCHEMA}.pg_class dr_c "
    "where dr_c.oid = o)",
    f"create macro {SCHEMA}.pg_relation_size(o) as {SCHEMA}.pg_table_size(o), (o, f) as {SCHEMA}.pg_table_size(o)",
    f"create macro {SCHEMA}.pg_total_relation_size(o) as {SCHEMA}.pg_table_size(o)",
    f"create macro {SCHEMA}.pg_size_pretty(b) as format_bytes(b::bigint)",
    f"create macro {SCHEMA}.array_upper(a, d) as len(a)",
    f"create macro {SCHEMA}.array_lower(a, d) as 1",
    f"create macro {SCHEMA}.pg_get_triggerdef(o) as null::varchar, (o, p) as null::varchar",
    f"create macro {SCHEMA}.pg_get_userbyid(o) as 'duckrec'",
    f"create macro {SCHEMA}.pg_table_is_visible(o) as true",
    f"create macro {SCHEMA}.pg_type_is_visible(o) as true",
    f"create macro {SCHEMA}.pg_encoding_to_char(e) as 'UTF8'",
    f"create macro {SCHEMA}.has_table_privilege(a, b) as true, (a, b, c) as true",
    f"create macro {SCHEMA}.has_schema_privilege(a, b) as true, (a, b, c) as true",
    f"create macro {SCHEMA}.has_database_privilege(a, b) as true, (a, b, c) as true",
    f"create macro {SCHEMA}.pg_backend_pid() as 0",
    f"create macro {SCHEMA}.current_setting(n) as (select setting from {SCHEMA}.pg_settings dr_g where dr_g.name = n), "
    f"(n, m) as (select setting from {SCHEMA}.pg_settings dr_g where dr_g.name = n)",
    f"create macro {SCHEMA}.version() as 'PostgreSQL {SERVER_VERSION} (duckrec serve, DuckDB ' || "
    "(select library_version from pragma_version()) || ')'",
    # ::regclass on a name: its oid (psql and SQLAlchemy pass 'schema.name' or 'name')
    f"create macro {SCHEMA}.ident_parts(n) as list_transform(string_split(n, '.'), lambda p: trim(p, '\"'))",
    f"create macro {SCHEMA}.to_regclass(n) as (select dr_c.oid from {SCHEMA}.pg_class dr_c join {SCHEMA}.pg_namespace dr_s "
    f"on dr_s.oid = dr_c.relnamespace where dr_c.relname = {SCHEMA}.ident_parts(n)[-1] and "
    f"(len({SCHEMA}.ident_parts(n)) = 1 or dr_s.nspname = {SCHEMA}.ident_parts(n)[-2]) "
    "order by dr_s.nspname <> 'main' limit 1)",
    # what ::regclass gives: an oid stays one, a name is looked up (pg_class itself is 1259, as
    # pg_description.classoid says)
    f"create macro {SCHEMA}.regclass_of(x) as case when x::varchar in ('pg_catalog.pg_class', 'pg_class') then 1259 "
    f"when try_cast(x::varchar as bigint) is not null then x::varchar::bigint else {SCHEMA}.to_regclass(x::varchar) end",
    f"create macro {SCHEMA}.to_regtype(n) as (select oid from {SCHEMA}.pg_type where typname = n)",
]


_NEEDS = re.compile(r"pg_|information_schema|version\s*\(|current_setting|_description|format_type|privilege|"
                    r"regclass|regtype|regnamespace|::\s*oid", re.I)


def needs_catalog(sql: str) -> bool:
    """Whether `sql` may read the emulated catalog (a false yes only costs building it)."""
    return _NEEDS.search(sql) is not None


def prepare_catalog(con) -> None:
    """Create `memory.duckrec_pg` for the build `con` has attached, and put it on the search path."""
    import duckdb

    con.execute(f"drop schema if exists memory.{SCHEMA} cascade")  # what a failed try left
    con.execute(f"create schema memory.{SCHEMA}")
    con.execute(f"use memory.{SCHEMA}")  # so the create statements below land in memory, not the warehouse
    try:
        for statement in _POPULATED:
            con.execute(statement.replace(f"{SCHEMA}.", f"memory.{SCHEMA}."))
        con.execute(f"""create table memory.{SCHEMA}.pg_type as select * from (values {_type_rows()})
                        v(oid, typname, typnamespace, typlen, typtype, typarray, typelem)""")
        con.execute(f"alter table memory.{SCHEMA}.pg_type add column typcollation bigint default 0")
        con.execute(f"alter table memory.{SCHEMA}.pg_type add column typrelid bigint default 0")
        con.execute(f"alter table memory.{SCHEMA}.pg_type add column typbasetype bigint default 0")
        con.execute(f"alter table memory.{SCHEMA}.pg_type add column typnotnull boolean default false")
        con.execute(f"alter table memory.{SCHEMA}.pg_type add column typtypmod integer default -1")
        con.execute(f"alter table memory.{SCHEMA}.pg_type add column typdelim varchar default ','")
        for name, columns in _EMPTY.items():
            con.execute(f"create table memory.{SCHEMA}.{name} ({columns})")
        con.create_function(f"{SCHEMA}_pg_type", pg_type, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("INTEGER"))
        con.execute(f"""create table memory.{SCHEMA}.pg_attribute as
            select attrelid, attname, {SCHEMA}_pg_type(data_type)::bigint as atttypid,
                   case when data_type like 'DECIMAL(%' then ((numeric_precision << 16) | numeric_scale) + 4
                        else -1 end as atttypmod,
                   attnum, attnotnull, column_default is not null as atthasdef, false as attisdropped,
                   '' as attidentity, '' as attgenerated, 'p' as attstorage, 0::bigint as attcollation,
                   -1 as attlen, 0 as attndims, -1 as attstattarget, null::varchar[] as attfdwoptions,
                   null::varchar[] as attoptions, null::varchar[] as attacl, '' as attcompression,
                   false as atthasmissing, true as attislocal, 0 as attinhcount
            from memory.{SCHEMA}.columns""")
        con.execute(f"create table memory.{SCHEMA}.pg_tables as select s.nspname as schemaname, c.relname as "
                    f"tablename, 'duckrec' as tableowner from memory.{SCHEMA}.pg_class c join memory.{SCHEMA}."
                    "pg_namespace s on s.oid = c.relnamespace where c.relkind = 'r'")
        con.execute(f"create table memory.{SCHEMA}.pg_views as select s.nspname as schemaname, c.relname as "
                    f"viewname, 'duckrec' as viewowner, r.definition from memory.{SCHEMA}.pg_class c join "
                    f"memory.{SCHEMA}.pg_namespace s on s.oid = c.relnamespace join memory.{SCHEMA}.relations r "
                    "on r.oid = c.oid where c.relkind = 'v'")
        for macro in _MACROS:
            con.execute(macro.replace(f"{SCHEMA}.", f"memory.{SCHEMA}."))
    finally:
        con.execute("use warehouse")
    con.execute(f"set search_path = 'warehouse.main,memory.{SCHEMA}'")


# ----------------------------------------------------------------- rewriting PostgreSQL's SQL

_CATALOG_NAMES = ({"pg_namespace", "pg_class", "pg_attribute", "pg_description", "pg_attrdef", "pg_constraint",
                   "pg_am", "pg_database", "pg_tablespace", "pg_roles", "pg_user", "pg_settings", "pg_type",
                   "pg_tables", "pg_views"} | set(_EMPTY)
                  | {m.split("(")[0].split(".")[1] for m in (x.replace("create macro ", "") for x in _MACROS)})
_OPERATOR = re.compile(r"OPERATOR\s*\(\s*pg_catalog\s*\.\s*([^)\s]+)\s*\)", re.I)
_COLLATE = re.compile(r"\s+COLLATE\s+(pg_catalog\s*\.\s*)?(\"?default\"?|\"C\"|\"POSIX\")", re.I)
_LITERAL_REGCLASS = re.compile(r"('(?:[^']|'')*')\s*::\s*(pg_catalog\s*\.\s*)?regclass\b", re.I)
_CAST_TYPES = re.compile(r"::\s*(pg_catalog\s*\.\s*)?(oid|regclass|regtype|regproc|regnamespace|name|text|int2vector"
                         r"|oidvector|\"char\"|char|int2|int4|int8|float4|float8|bool)\b(\s*\[\s*\])?", re.I)
_CAST_TARGETS = {"oid": "BIGINT", "regclass": "BIGINT", "regtype": "BIGINT", "regproc": "BIGINT",
                 "regnamespace": "BIGINT", "name": "VARCHAR", "text": "VARCHAR", "int2vector": "SMALLINT[]",
                 "oidvector": "BIGINT[]", '"char"': "VARCHAR", "char": "VARCHAR", "int2": "SMALLINT",
                 "int4": "INTEGER", "int8": "BIGINT", "float4": "FLOAT", "float8": "DOUBLE", "bool": "BOOLEAN"}
_CAST_REGCLASS = re.compile(r"\bCAST\s*\(\s*(\$\d+|'(?:[^']|'')*'|[\w.]+)\s+AS\s+(?:pg_catalog\s*\.\s*)?REGCLASS\s*\)",
                            re.I)
_CAST_AS = re.compile(r"\bAS\s+(pg_catalog\s*\.\s*)?(oid|regclass|regtype|regproc|regnamespace|name)\s*\)", re.I)
_QUALIFIED = re.compile(r"\bpg_catalog\s*\.\s*\"?([A-Za-z_][A-Za-z0-9_]*)\"?", re.I)
_SEGMENTS = re.compile(r"('(?:[^']|'')*')|(\"(?:[^\"]|\"\")*\")|(--[^\n]*)")


def rewrite(sql: str) -> str:
    """PostgreSQL catalog SQL as DuckDB runs it against `duckrec_pg`; other SQL unchanged
    (string literals and quoted names are left alone, except `'name'::regclass`)."""
    if "pg_" not in sql and "::" not in sql and "version()" not in sql.lower():
        return sql
    sql = _LITERAL_REGCLASS.sub(lambda m: f"{SCHEMA}.regclass_of({m.group(1)})", sql)
    sql = _CAST_REGCLASS.sub(lambda m: f"{SCHEMA}.regclass_of({m.group(1)})", sql)
    out, pos = [], 0
    for m in _SEGMENTS.finditer(sql):
        out.append(_rewrite_code(sql[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_rewrite_code(sql[pos:]))
    return "".join(out)


def _rewrite_code(code: str) -> str:
    code = _OPERATOR.sub(lambda m: m.group(1), code)
    code = _COLLATE.sub("", code)
    code = _CAST_TYPES.sub(lambda m: "::" + _CAST_TARGETS[m.group(2).lower()] + ("[]" if m.group(3) else ""), code)
    code = _CAST_AS.sub(lambda m: "AS " + _CAST_TARGETS[m.group(2).lower()] + ")", code)
    code = re.sub(r"\bjson_build_object\s*\(", "json_object(", code, flags=re.I)
    code = _QUALIFIED.sub(lambda m: (f"{SCHEMA}." if m.group(1).lower() in _CATALOG_NAMES else "") + m.group(1), code)
    return re.sub(r"(?<![\w.])version\s*\(\s*\)", f"{SCHEMA}.version()", code, flags=re.I)

