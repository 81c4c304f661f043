import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS: its default export is the plugin itself.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

interface Operation {
  responses?: Record<string, { $ref?: string; content?: Record<string, unknown> }>;
}

/** A documented path as a pattern of a request's path (`{id}`: one segment), literal paths first. */
interface PathPattern {
  path: string;
  pattern: RegExp;
  params: number;
}

/** JSON Pointer escaping of one reference token (RFC 6901). */
const token = (text: string) => text.replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * Checks answers against an OpenAPI 3.1 document (its schemas are JSON Schema 2020-12): the status
 * must be one the operation documents and a JSON body must match that status's schema.
 */
export interface ResponseValidator {
  /**
   * What is wrong with an answer, or undefined when it conforms. A request for no documented
   * operation (an unknown path or method) is not checked.
   */
  check(method: string, url: string, status: number, body: unknown): string | undefined;
}

/** A validator of answers against `document` (the served `/openapi.json`). */
export function responseValidator(document: Record<string, unknown>): ResponseValidator {
  // The document is not checked as a schema: its schemas are, as each answer's is compiled.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  ajv.addSchema(document, 'openapi');
  const paths = document.paths as Record<string, Record<string, Operation>>;
  const patterns: PathPattern[] = Object.keys(paths)
    .map((path) => ({
      path,
      pattern: new RegExp(
        `^${path.replaceAll(/[.*+?^$()|[\]\\]/g, '\\$&').replaceAll(/\{\w+\}/g, '[^/]+')}/?$`,
      ),
      params: (path.match(/\{/g) ?? []).length,
    }))
    .sort((a, b) => a.params - b.params);
  const components = document.components as { responses?: Record<string, unknown> };

  return {
    check(method, url, status, body) {
      const pathname = new URL(url, 'http://x').pathname;
      const lower = method.toLowerCase();
      const match = patterns.find((p) => p.pattern.test(pathname) && paths[p.path]?.[lower]);
      if (!match) return undefined;
      const operation = paths[match.path]![lower]!;
      let response = operation.responses?.[String(status)];
      let pointer = `#/paths/${token(match.path)}/${lower}/responses/${status}`;
      if (!response) return `${method} ${match.path} answered ${status}, a status the document does not list`;
      if (response.$ref) {
        const name = response.$ref.split('/').at(-1)!;
        response = components.responses?.[name] as typeof response;
        pointer = `#/components/responses/${token(name)}`;
        if (!response) return `${name} is not a response of the document`;
      }
      if (!response.content?.['application/json']) return undefined;
      const validate = ajv.getSchema(`openapi${pointer}/content/application~1json/schema`);
      if (!validate) return `no schema at ${pointer}`;
      if (validate(body)) return undefined;
      return `${method} ${match.path} ${status}: the body does not match the document: ${ajv.errorsText(validate.errors, { separator: '; ' })}\n${JSON.stringify(body).slice(0, 2000)}`;
    },
  };
}

/** Validators by document text: the apps of one worker share the compiled schemas of one document. */
const validators = new Map<string, ResponseValidator>();

/** The validator of the document served as `text` (made once per worker). */
export function servedValidator(text: string): ResponseValidator {
  let validator = validators.get(text);
  if (!validator) {
    validator = responseValidator(JSON.parse(text) as Record<string, unknown>);
    validators.set(text, validator);
  }
  return validator;
}
