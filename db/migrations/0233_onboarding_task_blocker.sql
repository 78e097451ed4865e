-- 0233_onboarding_task_blocker.sql - a blocked task says what blocks it, like a blocked milestone
-- (update_onboarding_progress stores it; track_onboarding_progress lists it with the blockers).
-- Tasks already blocked take their milestone's blocker text, or a note that none was recorded.
ALTER TABLE onboarding_tasks ADD COLUMN blocker text;
UPDATE onboarding_tasks k SET blocker = coalesce(m.blocker, 'not recorded')
FROM onboarding_milestones m WHERE m.milestone_id = k.milestone_id AND k.status = 'blocked';
ALTER TABLE onboarding_tasks ADD CONSTRAINT onboarding_tasks_blocked_has_blocker CHECK (status <> 'blocked' OR blocker IS NOT NULL);
