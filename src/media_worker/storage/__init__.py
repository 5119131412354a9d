"""The object storage port and its adapters (S3 via boto3, a local directory)."""
