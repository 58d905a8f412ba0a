-- Distributed tracing (docs/tracing.md): each task keeps the W3C trace context it was submitted
-- under, so every step attempt — in whichever worker process — becomes a span of the same trace.
--
-- `traceparent` is the W3C header value (`00-<32 hex trace id>-<16 hex parent span id>-<2 hex
-- flags>`): the caller's, or one made by orcastra.create_task. NULL only for tasks created before
-- this migration. Written once at creation, never updated: not indexed, and no cost to the hot
-- updates of the row (it is read by claim_steps through the primary key).
ALTER TABLE orcastra.tasks ADD COLUMN traceparent text
    CONSTRAINT tasks_traceparent_format CHECK (traceparent ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
