-- name: remembered
SELECT EXISTS (SELECT 1 FROM settings WHERE name = 'first_delivery')

-- name: delivered
SELECT EXISTS (SELECT 1 FROM stats_minute WHERE outcome = 'delivered' LIMIT 1)

-- name: received
SELECT EXISTS (SELECT 1 FROM stats_minute WHERE outcome = 'received' LIMIT 1)

-- name: remember
INSERT INTO settings (name, value) VALUES ('first_delivery', to_jsonb(now()))
ON CONFLICT (name) DO NOTHING
