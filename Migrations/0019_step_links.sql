-- Every parent → child link between steps, as the engine counts them: the edges of the template's
-- DAG (step_edges) and, for each instance of a fan-out, the link from the instance to its group
-- (steps.fanout_of), which counts the instance's completion down on the group (docs/templates.md,
-- "Fan-out"). From this release fan_out stores no edge for an instance: 10,000 instances wrote
-- 10,000 edge rows and their index entries, a sixth of the time their creation took
-- (docs/benchmarks.md). A fan-out made by an older release has those edges; the second branch
-- leaves those instances to the first, so each link counts once, whichever release made it.
--
-- Readers ask it by parent (children of finished steps) or by child (a step's parents), with
-- `= ANY (…)` or a parameter: a join condition does not reach into the second branch, which has
-- an anti-join. Both branches have an index for each: step_edges' primary key (parent_id,
-- child_id) and step_edges_child; steps' primary key and steps_fanout_all (fanout_of, item_index).
-- The second branch says `coalesce(i.fanout_of, 0) <> 0`, not `i.fanout_of IS NOT NULL`: that is
-- steps_fanout_all's predicate, and a plan made while the tables were small then read a lookup by
-- step id off that partial index, every instance of every fan-out once they grew
-- (PlanStabilityTests). A lookup by fan-out step still uses it: `fanout_of = …` implies it.
CREATE VIEW orcastra.step_links AS
SELECT e.parent_id, e.child_id FROM orcastra.step_edges e
UNION ALL
SELECT i.id, i.fanout_of FROM orcastra.steps i
WHERE coalesce(i.fanout_of, 0) <> 0
  AND NOT EXISTS (SELECT 1 FROM orcastra.step_edges e WHERE e.parent_id = i.id AND e.child_id = i.fanout_of);
