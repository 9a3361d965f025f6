# Sourced by the benchmark scripts: `pgbench_db BIN DB SCALE` (re)creates
# the pgbench database of the shared measurements: pgbench's schema and row
# counts at SCALE, with md5 fillers so that its dump compresses about 4.3x
# like real data (stock pgbench fillers are blank and compress ~118x).
pgbench_db() {
    local bin=$1 db=$2 scale=$3
    "$bin/dropdb" --if-exists "$db"
    "$bin/createdb" "$db"
    "$bin/pgbench" -i -q -s "$scale" -I dt "$db" >/dev/null 2>&1
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" <<SQL
INSERT INTO pgbench_branches SELECT bid, 0, md5('b'||bid) FROM generate_series(1, $scale) bid;
INSERT INTO pgbench_tellers SELECT tid, (tid-1)/10+1, 0, md5('t'||tid) FROM generate_series(1, $scale * 10) tid;
INSERT INTO pgbench_accounts SELECT aid, (aid-1)/100000+1, 0, md5(aid::text) FROM generate_series(1, $scale * 100000) aid;
SQL
    "$bin/pgbench" -i -q -s "$scale" -I vp "$db" >/dev/null 2>&1
}
