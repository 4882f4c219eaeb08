//! The outbound list APIs: `/v1/webhook-jobs` (page numbers) and
//! `/api/webhook-deliveries` (cursors, filter expressions, orderBy).
