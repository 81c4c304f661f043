import { type Logger, pino } from 'pino';

/**
 * Paths pino blanks out wherever they appear in a log object: secrets, signatures, tokens, keys and
 * card data never reach a log line.
 */
const REDACT = [
  'req.headers.authorization',
  'req.headers["stripe-signature"]',
  'req.headers["paypal-transmission-sig"]',
  'req.headers["x-anet-signature"]',
  '*.secret',
  '*.password',
  '*.token',
  '*.apiKey',
  '*.key',
  '*.card',
  '*.number',
  '*.cvc',
  'req.query.api_key',
  'req.query.apikey',
  'req.query.key',
  'req.query.token',
  'req.query.access_token',
  'req.query.secret',
  'req.query.password',
];

/** The process's JSON logger (pino), one line per event, with redaction. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, base: { service: 'billhook' }, redact: { paths: REDACT, censor: '[redacted]' } },
    destination,
  );
}
