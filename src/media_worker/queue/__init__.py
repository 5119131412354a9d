"""The queue port and its adapters (SQS via boto3, embedded SQLite)."""
