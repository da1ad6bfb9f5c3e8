#!/usr/bin/env bash
# What each index, the foreign key and the tsvector cost a 100-row insert into messages
# (docs/scaling.md "What a message insert costs").
#
#   loadtest/sql/insert-cost.sh CONNINFO [SECONDS]     (default 240)
#
# CONNINFO: a libpq connection string or database name of a database migrated by the server and
# filled by bulk-10x.sql (e.g. `psql -v tenant=bulk -v customers=1500 -v convs=2 -v msgs=100
# -v memories=0 -f loadtest/sql/bulk-10x.sql DB`: 300,000 messages). Makes the variant tables of
# insert-cost-setup.sql, then one pgbench client runs the same 100-row INSERT ... SELECT into every
# variant, interleaved (pgbench picks a variant at random per transaction), synchronous_commit off
# so the WAL flush's noise stays out (PGOPTIONS overrides it). Prints each variant's p50/p90 and its
# p50 minus the bare table's. 'source' is the SELECT alone (the rows, without an insert).
set -euo pipefail
conn=${1:?usage: insert-cost.sh CONNINFO [SECONDS]}
seconds=${2:-240}
here=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
psql -X -q -v ON_ERROR_STOP=1 -f "$here/insert-cost-setup.sql" "$conn" >/dev/null
variants=(bare pk seq idem convcreated tenantcreated fk tsv tsvsimple ginon ginoff realnotsv real)
rows="SELECT cl.tenant_id, ic_uuid7(clock_timestamp()), cl.id,
       (extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 100 + g,
       CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END, p.t, '{}'::jsonb, md5(random()::text), now()
  FROM ic_conv cl, generate_series(0, 99) g JOIN ic_pool p ON p.s = :p + g
 WHERE cl.n = :c"
head="\\set c random(1, $(psql -X -At -c 'SELECT count(*) FROM ic_conv' "$conn"))
\\set p random(1, $(($(psql -X -At -c 'SELECT count(*) FROM ic_pool' "$conn") - 100)))"
args=(-f "$work/source.sql")
printf '%s\nSELECT count(*) FROM (%s) x;\n' "$head" "$rows" > "$work/source.sql"
for v in "${variants[@]}"; do
  printf '%s\nINSERT INTO ic_%s (tenant_id, id, conversation_id, sequence, role, content, metadata, idempotency_key, created_at)\n%s;\n' \
    "$head" "$v" "$rows" > "$work/$v.sql"
  args+=(-f "$work/$v.sql")
done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$work" && PGOPTIONS=${PGOPTIONS:--c synchronous_commit=off} pgbench -n -M prepared -T "$seconds" -l "${args[@]}" "$conn" >/dev/null)
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
# pgbench's log: client transaction latency_us script_no epoch epoch_us; script 0 is 'source'.
sort -k4,4n -k3,3n "$work"/pgbench_log.* | awk -v names="source ${variants[*]}" '
  BEGIN { n = split(names, name, " ") }
  { lat[$4, ++cnt[$4]] = $3 / 1000.0 }
  function pct(s, f) { return lat[s, int(f * (cnt[s] - 1)) + 1] }
  END {
    printf "%-14s %6s %8s %8s %12s\n", "variant", "runs", "p50 ms", "p90 ms", "p50 - bare"
    bare = pct(1, 0.5)
    for (s = 0; s < n; s++) printf "%-14s %6d %8.2f %8.2f %+12.2f\n", name[s + 1], cnt[s], pct(s, 0.5), pct(s, 0.9), pct(s, 0.5) - bare
  }'
