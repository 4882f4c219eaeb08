//! Per-request cost of a typical filter rule on a ~1 KiB body: a Shopify
//! order filtered on its status, amount (a string compared with a number, as
//! Shopify sends it), currency, and a SKU among the line items.

use criterion::{criterion_group, criterion_main, Criterion};
use hookgate::pipeline::filter::RequestFilter;
use serde_json::{json, Value};
use std::hint::black_box;

fn shopify_order() -> Value {
    let items: Vec<Value> = [
        ("TS-BLUE-M", "49.99"),
        ("TS-RED-L", "59.99"),
        ("CAP-01", "95.01"),
    ]
    .iter()
    .zip(1u64..)
    .map(|(&(sku, price), n)| {
        json!({ "id": n, "variant_id": n + 1000, "title": "Organic cotton t-shirt", "sku": sku,
                    "quantity": 2, "price": price, "vendor": "Acme", "requires_shipping": true, "taxable": true })
    })
    .collect();
    json!({
        "headers": { "content-type": "application/json", "x-shopify-topic": "orders/create",
                     "x-shopify-shop-domain": "acme.myshopify.com" },
        "body": {
            "id": 820_982_911_946_154_508_u64, "order_number": 1001, "email": "jon@example.com",
            "financial_status": "paid", "total_price": "254.98", "currency": "USD",
            "tags": "vip, wholesale", "test": false,
            "note": "Please leave the parcel with the neighbour at number 12 if nobody answers; ring twice. Gift wrap the cap and add a card saying happy birthday from all of us.",
            "customer": { "id": 115_310_627_314_723_954_u64, "first_name": "Jon", "last_name": "Snow",
                          "email": "jon@example.com", "orders_count": 3 },
            "line_items": items,
            "shipping_address": { "city": "Berlin", "country_code": "DE", "zip": "10115" },
        },
        "query": {},
        "path": "/",
    })
}

fn typical_filter() -> RequestFilter {
    let headers = json!({ "X-Shopify-Topic": { "$startsWith": "orders/" } });
    let body = json!({
        "financial_status": { "$in": ["paid", "partially_paid"] },
        "total_price": { "$gte": 100 },
        "currency": "USD",
        "line_items": { "sku": { "$startsWith": "TS-" } },
        "test": { "$neq": true },
    });
    RequestFilter::new(Some(&headers), Some(&body), None, None)
}

fn bench(c: &mut Criterion) {
    let request = shopify_order();
    let body_bytes = request["body"].to_string().len();
    assert!(
        (900..1400).contains(&body_bytes),
        "a ~1 KiB body: {body_bytes} bytes"
    );
    let filter = typical_filter();
    assert!(
        filter.matches(&request),
        "the typical order passes the filter"
    );
    c.bench_function("filter_typical_rule_1kib_body", |b| {
        b.iter(|| filter.matches(black_box(&request)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
