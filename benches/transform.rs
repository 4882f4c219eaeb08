//! Per-event cost of a typical transformation: reshape a ~1 KiB
//! Shopify-order-like body into a compact object and add a header.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use hookgate::config::LimitsSection;
use hookgate::pipeline::transform::{
    Admission, PoolSettings, TransformLimits, Transformation, WorkerPool,
};
use serde_json::{json, Value};

const RESHAPE: &str = r#"
addHandler('transform', (request, context) => {
  const order = request.body;
  request.body = {
    id: order.id,
    number: order.order_number,
    email: order.email,
    total: Number(order.total_price),
    currency: order.currency,
    customer: order.customer.first_name + ' ' + order.customer.last_name,
    items: order.line_items.map((item) => ({ sku: item.sku, qty: item.quantity, price: Number(item.price) })),
    shipTo: order.shipping_address.city + ', ' + order.shipping_address.country_code,
  };
  request.headers['x-shop-topic'] = request.headers['x-shopify-topic'] || 'unknown';
  request.headers['x-connection'] = context.connection.id;
  return request;
});
"#;

fn shopify_order() -> Value {
    let item = |id: u64, sku: &str, price: &str| {
        json!({ "id": id, "variant_id": id + 1000, "title": "Organic cotton t-shirt", "sku": sku,
                "quantity": 2, "price": price, "vendor": "Acme", "requires_shipping": true, "taxable": true })
    };
    json!({
        "headers": { "content-type": "application/json", "x-shopify-topic": "orders/create",
                     "x-shopify-shop-domain": "acme.myshopify.com", "x-shopify-hmac-sha256": "b64hmacvalue==" },
        "body": {
            "id": 820982911946154508u64, "order_number": 1001, "email": "jon@example.com",
            "created_at": "2024-05-01T12:00:00-04:00", "currency": "USD", "financial_status": "paid",
            "total_price": "199.00", "subtotal_price": "189.00", "total_tax": "10.00",
            "customer": { "id": 115310627314723954u64, "first_name": "Jon", "last_name": "Snow",
                          "email": "jon@example.com", "orders_count": 3 },
            "line_items": [item(1, "TS-RED-M", "49.50"), item(2, "TS-BLU-L", "45.00")],
            "shipping_address": { "address1": "1 Main St", "city": "Ottawa", "province": "Ontario",
                                  "zip": "K1A 0B1", "country_code": "CA" },
            "tags": "vip, wholesale", "note": null
        },
        "query": "shop=acme&topic=orders%2Fcreate",
        "path": "/webhooks/shopify"
    })
}

fn bench(c: &mut Criterion) {
    // One worker: the cost of one event, not the pool's parallelism.
    let pool = WorkerPool::shared(PoolSettings {
        workers: 1,
        ..LimitsSection::default().transform_pool(env!("CARGO_BIN_EXE_hookgate").into())
    });
    let transformation = Transformation::new(
        &pool,
        "reshape",
        RESHAPE,
        BTreeMap::new(),
        TransformLimits::default(),
        Admission::Wait,
    )
    .expect("bench transformation loads");
    let request = shopify_order();
    let context = json!({ "connection": { "id": "conn_123", "name": "shopify-orders" } });
    eprintln!("request body: {} bytes", request["body"].to_string().len());
    c.bench_function("reshape_shopify_order", |b| {
        b.iter(|| {
            transformation
                .run(&request, &context)
                .expect("transform succeeds")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
