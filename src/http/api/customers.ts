import { Router } from 'express';
import { createCustomer, createPaymentMethod, getCustomer } from '../../billing/customers.ts';
import type { AppDeps } from '../deps.ts';
import { CreateCustomer, CreatePaymentMethod } from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/** POST/GET /v1/customers and POST /v1/payment-methods. */
export function customerRoutes({ db }: AppDeps): Router {
  const router = Router();
  router.post('/customers', async (req, res) => {
    const body = parseInput(CreateCustomer, req.body);
    const customer = await createCustomer(db, {
      email: body.email,
      name: body.name,
      externalId: body.external_id,
      metadata: body.metadata,
    });
    res.status(201).json(serialize.customer(customer));
  });
  router.get('/customers/:id', async (req, res) => {
    res.json(serialize.customer(await getCustomer(db, req.params.id)));
  });
  router.post('/payment-methods', async (req, res) => {
    const body = parseInput(CreatePaymentMethod, req.body);
    const method = await createPaymentMethod(db, {
      customerId: body.customer,
      gateway: body.gateway,
      gatewayToken: body.gateway_token,
      gatewayCustomerId: body.gateway_customer_id,
      isDefault: body.default,
    });
    res.status(201).json(serialize.paymentMethod(method));
  });
  return router;
}
