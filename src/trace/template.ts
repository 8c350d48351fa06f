/**
 * bpftrace programs are template files beside this module (svtrace.bt,
 * learn.bt). `fillTemplate` is the one function that puts parameters into
 * them: every `{{NAME}}` must be given, nothing else may be, and no value
 * may itself contain a placeholder.
 */
import { readFileSync } from 'node:fs';
import { SvtraceError } from '../errors.ts';

const cache = new Map<string, string>();

export type TemplateName = 'svtrace.bt' | 'learn.bt';

/** The template text. Looks beside this module, then in ../src/trace (for the bundled dist/). */
export function loadTemplate(name: TemplateName): string {
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  const candidates = [new URL(`./${name}`, import.meta.url), new URL(`../src/trace/${name}`, import.meta.url)];
  for (const url of candidates) {
    try {
      const text = readFileSync(url, 'utf8');
      cache.set(name, text);
      return text;
    } catch {
      // try the next place
    }
  }
  throw new SvtraceError('TRACE_TEMPLATE_MISSING', `the bpftrace template ${name} is not installed`, {
    hint: 'reinstall svtrace: the src/trace/*.bt files must ship with it',
  });
}

const PLACEHOLDER = /\{\{([A-Z_]+)\}\}/g;

export function fillTemplate(name: TemplateName, params: Readonly<Record<string, string>>): string {
  const text = loadTemplate(name);
  const used = new Set<string>();
  for (const [k, v] of Object.entries(params)) {
    if (v.includes('{{')) throw new SvtraceError('TRACE_TEMPLATE_PARAM', `template parameter ${k} contains a placeholder`);
  }
  const out = text.replace(PLACEHOLDER, (_m, key: string) => {
    if (!Object.hasOwn(params, key)) throw new SvtraceError('TRACE_TEMPLATE_PARAM', `template ${name} needs parameter ${key}`);
    used.add(key);
    return params[key]!;
  });
  for (const k of Object.keys(params)) {
    if (!used.has(k)) throw new SvtraceError('TRACE_TEMPLATE_PARAM', `template ${name} has no placeholder ${k}`);
  }
  return out;
}
