"""Verifies one webhook delivery with the Standard Webhooks Python library.

Usage: python3 verify.py SECRET WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < raw-body
Prints "verified" and exits 0, or prints why not and exits 1 (2: no library).
"""

import sys

try:
    from standardwebhooks.webhooks import Webhook
except ImportError as missing:
    print(f"the standardwebhooks package is not installed ({missing}): pip install -r tests/standardwebhooks/requirements.txt", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    secret, webhook_id, timestamp, signature = sys.argv[1:5]
    body = sys.stdin.buffer.read()
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
    }
    try:
        Webhook(secret).verify(body, headers)
    except Exception as refused:  # the library's WebhookVerificationError, or a bad secret
        print(f"not verified: {refused!r}")
        sys.exit(1)
    print("verified")


main()
