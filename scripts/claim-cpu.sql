-- CPU time of 3,000 claims of 10 steps (each rolled back) in one backend, in 10 ms ticks, read
-- from /proc (docs/benchmarks.md, "Step concurrency"). Run with psql on the database server's
-- machine against a database with enqueued steps in namespace 'bench':
--   psql -d DB -f scripts/claim-cpu.sql
SELECT pg_backend_pid() AS pid \gset
\setenv PID :pid
\! awk '{print "cpu_ticks_before", $14+$15}' /proc/$PID/stat
DO $$ BEGIN FOR i IN 1..3000 LOOP
  BEGIN PERFORM count(*) FROM orcastra.claim_steps('bench', 'w', 10, 30000); RAISE EXCEPTION 'rollback' USING ERRCODE = 'P0003'; EXCEPTION WHEN SQLSTATE 'P0003' THEN NULL; END;
END LOOP; END $$;
\! awk '{print "cpu_ticks_after", $14+$15}' /proc/$PID/stat
