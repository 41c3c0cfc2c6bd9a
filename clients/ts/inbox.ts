// The invitee's mailbox: the RFC 5322 .eml files the local run's directory sender writes
// (API_MAIL_DIRECTORY), read as a mail client reads them (unfolded headers, the text decoded from its
// transfer encoding), and an invitation's token taken from its link as the frontend's accept page
// takes it: the link's `token` query parameter.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface Message {
  headers: Map<string, string>;
  text: string;
}

function quotedPrintable(body: string): string {
  const bytes = body
    .replace(/=\r?\n/g, "") // soft line breaks
    .replace(/=([0-9A-Fa-f]{2})/g, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, "latin1").toString("utf8");
}

export function parse(raw: string): Message {
  const end = /\r?\n\r?\n/.exec(raw);
  if (end === null) throw new Error("a message without a body");
  const head = raw.slice(0, end.index).replace(/\r?\n[ \t]+/g, " ");
  const body = raw.slice(end.index + end[0].length);
  const headers = new Map<string, string>();
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const encoding = (headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
  const text =
    encoding === "quoted-printable"
      ? quotedPrintable(body)
      : encoding === "base64"
        ? Buffer.from(body, "base64").toString("utf8")
        : body;
  return { headers, text };
}

/** The newest message to `address` (compared case-insensitively); file names sort in the order written. */
export function newestTo(folder: string, address: string): Message {
  const names = readdirSync(folder)
    .filter((name) => name.endsWith(".eml"))
    .sort()
    .reverse();
  for (const name of names) {
    const message = parse(readFileSync(join(folder, name), "utf8"));
    if (message.headers.get("to")?.toLowerCase() === address.toLowerCase()) return message;
  }
  throw new Error(`no message to ${address} in ${folder}`);
}

export function invitationToken(message: Message): string {
  const link = /https?:\/\/\S+/.exec(message.text)?.[0];
  const token = link === undefined ? null : new URL(link).searchParams.get("token");
  if (!token) throw new Error(`no invitation link in:\n${message.text}`);
  return token;
}
