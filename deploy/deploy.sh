#!/usr/bin/env bash
# Deploy a packaged stage with CloudFormation:
#
#   make package STAGE=dev PACKAGE_ARGS="--format cloudformation"
#   ARTIFACT_BUCKET=my-artifacts deploy/deploy.sh dev [build/dev/cloudformation]
#
# Needs AWS credentials (CI: the OIDC role) and ARTIFACT_BUCKET, an S3 bucket in the stage's region
# for the code. The stack is "interactions-api-<stage>" (the IAM policies' log-group ARNs expect
# that prefix). Refuses a stage that still has the documented placeholder ARNs. The last line on
# stdout is the API's base URL (the stack's EndpointURL, where /api/... is appended); under GitHub
# Actions it is also the step output `url`.
set -euo pipefail

stage="${1:?usage: deploy/deploy.sh STAGE [PACKAGE_DIR]}"
cd "$(dirname "$0")/.."
dir="${2:-build/$stage/cloudformation}"
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
: "${ARTIFACT_BUCKET:?set ARTIFACT_BUCKET to the S3 bucket that holds the deployment packages}"
[ -f "$dir/sam.json" ] || { echo "no $dir/sam.json: run make package STAGE=$stage first" >&2; exit 1; }

"$python" -m deploy.stages "$stage" --for-deploy >&2
region="$("$python" -c "import sys; from deploy.stages import region; print(region(sys.argv[1]))" "$stage")"
stack="interactions-api-$stage"

aws cloudformation package --region "$region" \
    --template-file "$dir/sam.json" \
    --s3-bucket "$ARTIFACT_BUCKET" --s3-prefix "interactions-api/$stage" \
    --output-template-file "$dir/packaged.yaml" >&2

# A failed update rolls the stack back to the previous template by itself.
aws cloudformation deploy --region "$region" \
    --template-file "$dir/packaged.yaml" \
    --stack-name "$stack" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --no-fail-on-empty-changeset \
    --tags project=interactions-api "stage=$stage" >&2

url="$(aws cloudformation describe-stacks --region "$region" --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='EndpointURL'].OutputValue" --output text)"
url="${url%/}"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "url=$url" >> "$GITHUB_OUTPUT"
fi
echo "$url"
