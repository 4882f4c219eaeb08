// Reshapes a Shopify `orders/create` webhook into the compact payload the
// orders service wants: ids, totals as numbers, one line per item.
addHandler('transform', (request, context) => {
  const order = request.body;
  if (!order || !Array.isArray(order.line_items)) {
    throw new Error('not a Shopify order: no line_items');
  }
  const customer = order.customer || {};
  request.body = {
    order_id: order.id,
    number: order.order_number,
    email: order.email,
    currency: order.currency,
    total: Number(order.current_total_price || order.total_price),
    customer: [customer.first_name, customer.last_name].filter(Boolean).join(' '),
    items: order.line_items.map((item) => ({ sku: item.sku, quantity: item.quantity, price: Number(item.price) })),
    ship_to: order.shipping_address ? `${order.shipping_address.city}, ${order.shipping_address.country_code}` : null,
  };
  request.headers['content-type'] = 'application/json';
  console.log(`order ${order.order_number}: ${order.line_items.length} item(s)`);
  return request;
});
