"""The write path: every way a sale, a refund or a genealogy change comes in (REST calls,
webhook events, the bulk import) goes through this package, down to `services/`.

* `payloads`: the one strict JSON reader (bounded nesting, no duplicate keys, UTF-8 only);
* `requests`: the request models shared by REST and events;
* `writes`: the five writes, each applied once per Idempotency-Key;
* `ledger`: the exactly-once memory of applied requests;
* `answers`: the bodies a write answers (and a replay answers again);
* `events`: webhook events and batches, applied in order, each exactly once;
* `signatures`: Standard Webhooks secrets and signature checks.
"""
