/**
 * billhook's error hierarchy for expected refusals. Each carries the HTTP status it maps to in
 * exactly one place (http/errors.ts); anything else is a bug or an outage (500 / 503).
 */
export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  readonly type: string;
  readonly code: string;
  readonly fields?: Record<string, string>;
  /**
   * @param status HTTP status the API answers with
   * @param type error family for clients (`invalid_request`, `not_found`, `conflict`, …)
   * @param code machine-readable reason, e.g. `invoice_not_open`
   * @param fields field-level messages, keyed by the request field's path (`lines.0.amount`)
   */
  constructor(status: number, type: string, code: string, message: string, fields?: Record<string, string>) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.fields = fields;
  }
}

/** 404: the named resource does not exist. */
export class NotFoundError extends AppError {
  constructor(resource: string, id: string) {
    super(404, 'not_found', `${resource}_not_found`, `no ${resource.replaceAll('_', ' ')} with id ${id}`);
  }
}

/**
 * 409: the request is valid but the resource's state does not allow it; `fields`, when given, names
 * the request fields the state refuses (as `AppError`'s), e.g. an `amount` beyond what is left.
 */
export class ConflictError extends AppError {
  constructor(code: string, message: string, fields?: Record<string, string>) {
    super(409, 'conflict', code, message, fields);
  }
}

/** 422: the request parsed but a field's value is not acceptable. */
export class ValidationError extends AppError {
  constructor(message: string, fields: Record<string, string>) {
    super(422, 'invalid_request', 'validation_failed', message, fields);
  }
}
