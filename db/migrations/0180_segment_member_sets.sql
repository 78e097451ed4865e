-- 0180_segment_member_sets.sql - a segmentation run's members as one array per segment (issue 21):
-- segment_by_value_tier and segment_customers stored one segment_members row per account and
-- call (100,000 rows at 100,000 accounts, each with two foreign-key checks that also lock the
-- account row: seconds per call, most of both tools' time).
--
--   segment_member_rows: the former segment_members table, unchanged (rows written one by one
--     through the view below keep landing here).
--   segment_member_sets (segment_id, client_ids): the members of one segment, sorted, written
--     once per segment by the two segmentation tools.
--   segment_members (db/functions/common/segment_members.sql) is a view: the union of both, so
--     every reader is unchanged; an INSTEAD OF INSERT trigger keeps it writable.
--
-- Invariants (db/functions/common/segment_members.sql): an account in a set exists - deleting
-- accounts removes them from the sets in the deleting transaction (statement trigger on
-- accounts, under a SHARE lock of segments that the writing tools' ROW EXCLUSIVE lock,
-- taken before they read accounts, conflicts with: a run and a deletion are serialised); a
-- segment's deletion removes its set (foreign key, ON DELETE CASCADE).
ALTER TABLE segment_members RENAME TO segment_member_rows;

CREATE TABLE segment_member_sets (
    segment_id text PRIMARY KEY REFERENCES segments ON DELETE CASCADE,
    client_ids text[] NOT NULL
);
