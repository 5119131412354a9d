#!/bin/sh
# LocalStack "ready" hook (mounted into /etc/localstack/init/ready.d/): create the job queue
# and its dead-letter queue, as the original system's setup does.
#
# The redrive policy moves a message to media-jobs-dlq after 10 receives. That is well past
# MAX_ATTEMPTS (5): the worker itself marks a row FAILED and deletes its message after that many
# claims, so the dead-letter queue only catches poison messages (which the worker moves there
# directly) and messages that loop for some other reason. Safe to run again.
set -eu

QUEUE=${QUEUE_NAME:-media-jobs}
DLQ=${DLQ_NAME:-media-jobs-dlq}
MAX_RECEIVE_COUNT=${MAX_RECEIVE_COUNT:-10}

dlq_url=$(awslocal sqs create-queue --queue-name "$DLQ" \
  --attributes MessageRetentionPeriod=1209600 --query QueueUrl --output text)
dlq_arn=$(awslocal sqs get-queue-attributes --queue-url "$dlq_url" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)

# RedrivePolicy is a JSON document inside the JSON map of attributes, hence the file.
attributes=$(mktemp)
trap 'rm -f "$attributes"' EXIT
cat >"$attributes" <<JSON
{
  "VisibilityTimeout": "300",
  "MessageRetentionPeriod": "1209600",
  "RedrivePolicy": "{\"deadLetterTargetArn\":\"$dlq_arn\",\"maxReceiveCount\":\"$MAX_RECEIVE_COUNT\"}"
}
JSON
awslocal sqs create-queue --queue-name "$QUEUE" --attributes "file://$attributes" \
  --query QueueUrl --output text

echo "init-sqs: $QUEUE -> $DLQ after $MAX_RECEIVE_COUNT receives"
