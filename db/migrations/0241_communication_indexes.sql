-- 0241_communication_indexes.sql - a member's posts (get_member_profile, post_content's moderation
-- rule, reputation) without a scan of all posts of all communities.
CREATE INDEX community_posts_member_idx ON community_posts (member_id, created_at);
