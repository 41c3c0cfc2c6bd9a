// Every response the flow receives, checked against the OpenAPI document it was generated from:
// the status is one the operation declares, the body fits that response's schema (Ajv, JSON Schema
// 2020-12 as OpenAPI 3.1 has it, with the formats), and the headers the response declares as
// required are there. An openapi-fetch middleware, so no call of the flow escapes it.
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ValidateFunction } from "ajv/dist/2020.js";
import formats from "ajv-formats";
import type { FormatsPlugin } from "ajv-formats";
import type { Middleware } from "openapi-fetch";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const DOCUMENT_ID = "https://api.invalid/openapi.json";

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function escape(segment: string): string {
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

export class ResponseChecker {
  readonly checked: string[] = [];
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly document: JsonObject) {
    // strict off: the document carries OpenAPI's keywords beside JSON Schema's (`example`...).
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
    // ajv-formats is CommonJS: under NodeNext its default import is the module, whose `default` is
    // the plugin.
    (formats as unknown as { default: FormatsPlugin }).default(this.ajv);
    this.ajv.addSchema(document, DOCUMENT_ID);
  }

  private at(pointer: string[]): Json | undefined {
    let node: Json | undefined = this.document;
    for (const key of pointer) {
      node = isObject(node) ? node[key] : undefined;
    }
    return node;
  }

  /** The response object (with its JSON pointer) that `status` of `method path` answers with. */
  private response(path: string, method: string, status: number): [JsonObject, string] {
    const operation = this.at(["paths", path, method]);
    if (!isObject(operation)) throw new Error(`${method.toUpperCase()} ${path} is not in the document`);
    const responses = operation["responses"];
    const declared = isObject(responses) ? responses[String(status)] : undefined;
    if (!isObject(declared)) {
      throw new Error(`${method.toUpperCase()} ${path} answered ${status}, a status it does not declare`);
    }
    const ref = declared["$ref"];
    if (typeof ref === "string") {
      const pointer = ref.replace(/^#\//, "").split("/");
      const target = this.at(pointer);
      if (!isObject(target)) throw new Error(`unresolved ${ref}`);
      return [target, ref.slice(1)];
    }
    return [declared, `/paths/${escape(path)}/${method}/responses/${status}`];
  }

  private validator(pointer: string): ValidateFunction {
    let validate = this.validators.get(pointer);
    if (validate === undefined) {
      validate = this.ajv.compile({ $ref: `${DOCUMENT_ID}#${pointer}` });
      this.validators.set(pointer, validate);
    }
    return validate;
  }

  async check(path: string, method: string, response: Response): Promise<void> {
    const [declared, pointer] = this.response(path, method.toLowerCase(), response.status);
    const where = `${method} ${path} ${response.status}`;
    const contentType = response.headers.get("content-type") ?? "";
    if (!contentType.startsWith("application/json")) throw new Error(`${where}: Content-Type ${contentType}`);
    const headers = declared["headers"];
    if (isObject(headers)) {
      for (const [name, header] of Object.entries(headers)) {
        const ref = isObject(header) ? header["$ref"] : undefined;
        const headerPointer = typeof ref === "string" ? ref.slice(1) : `${pointer}/headers/${escape(name)}`;
        const resolved = this.at(headerPointer.slice(1).split("/"));
        const value = response.headers.get(name);
        if (!isObject(resolved)) throw new Error(`unresolved header ${headerPointer}`);
        if (value === null) {
          if (resolved["required"] === true) throw new Error(`${where}: the declared header ${name} is missing`);
          continue;
        }
        // A header is text: an integer's schema is checked against the number it spells.
        const schema = resolved["schema"];
        const typed = isObject(schema) && schema["type"] === "integer" && /^[0-9]+$/.test(value) ? Number(value) : value;
        const validate = this.validator(`${headerPointer}/schema`);
        if (!validate(typed)) {
          throw new Error(`${where}: header ${name}: ${value} does not fit: ${this.ajv.errorsText(validate.errors)}`);
        }
      }
    }
    const body = (await response.clone().json()) as Json;
    const validate = this.validator(`${pointer}/content/application~1json/schema`);
    if (!validate(body)) {
      throw new Error(`${where}: the body does not fit the document: ${this.ajv.errorsText(validate.errors)}`);
    }
    this.checked.push(where);
  }

  middleware(): Middleware {
    return {
      onResponse: async ({ request, response, schemaPath }) => {
        await this.check(schemaPath, request.method, response);
        return undefined;
      },
    };
  }
}
