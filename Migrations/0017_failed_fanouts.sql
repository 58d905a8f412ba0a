-- A fan-out step (`for_each`) fails when its last instance finished and one of them failed for
-- good, so that its `trigger: all_done` children run (functions/fanout.sql, fail_fanouts). When an
-- operator then retries or resolves a failed instance, the fan-out is pending again and carries
-- on: error → pending, for a fan-out that made its instances only (functions/audit.sql refuses it
-- for any other step with OR001). docs/state-machines.md.
INSERT INTO orcastra.step_state_transitions_allowed (from_state, to_state) VALUES ('error', 'pending');
