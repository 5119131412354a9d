"""Status events: every status transition of a row, told to the API as it happens.

The repositories write each event into an outbox table in the same transaction as the status
change (and, on PostgreSQL, queue a NOTIFY); a dispatcher per configured target delivers the
outbox rows, oldest first and in order per media, and deletes them once the target has them.
`outbox` holds the port of that table, `target` the port of a destination, `dispatcher` the
delivery loop, `keeper` the outbox's upkeep, `webhook_target` the webhook target and
`aws_batch` the SQS and SNS one.
docs/events.md is the user's guide.
"""
