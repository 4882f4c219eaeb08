// Labels each Stripe event with its mode, so that a filter placed after this
// transformation can keep live events only (test-mode events become FILTERED).
addHandler('transform', (request, context) => {
  const live = request.body && request.body.livemode === true;
  request.headers['x-stripe-mode'] = live ? 'live' : 'test';
  if (!live) {
    console.info(`test-mode event ${request.body && request.body.id} will be filtered out`);
  }
  return request;
});
