-- name: code
SELECT code FROM transformation_versions WHERE id = %(version)s
