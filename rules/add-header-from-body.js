// Copies the event type from the body into a header, so the receiver can route
// without parsing the body (`x-event-type: order.created`). The header name
// comes from the transformation's env: env = { HEADER = "x-event-type" }.
addHandler('transform', (request, context) => {
  const header = process.env.HEADER || 'x-event-type';
  const type = request.body && (request.body.type || request.body.event || request.body.topic);
  if (type) {
    request.headers[header] = String(type);
  } else {
    console.warn('no type/event/topic field in the body; header not set');
  }
  return request;
});
