-- The analytics window (/v1/analytics/performance) selects tasks by creation time; without this
-- index it reads the whole tasks table.

CREATE INDEX tasks_created_at_idx ON tasks (created_at);
