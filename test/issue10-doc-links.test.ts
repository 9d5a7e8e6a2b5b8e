// Issue 10, item 13: the documentation names only files that exist. Every relative link in README.md
// and docs/*.md resolves to a file of the repository, and so does every file name the text mentions
// (`src/...`, `test/...`, `docs/...`, `*.md`), so a reader never looks for a file that is not there.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { test } from 'node:test';

const REPOSITORY_FILES = 'https://github.com/dps-mqtt/dps-mqtt/blob/main/';

const DOCUMENTS = [
  'README.md',
  ...readdirSync('docs')
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name)),
];

/** Markdown without its fenced code blocks (commands and output, not references). */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
}

function brokenLinks(
  document: string,
  markdown: string,
  exists: (path: string) => boolean = existsSync,
): string[] {
  const broken: string[] = [];
  for (const match of prose(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    let target = match[1]!.split('#')[0]!;
    // Links to this repository's own files by URL (the package ships no documents) are checked too.
    if (target.startsWith(REPOSITORY_FILES)) target = `/${target.slice(REPOSITORY_FILES.length)}`;
    else if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    if (target.startsWith('/')) {
      if (!exists(normalize(target.slice(1)))) broken.push(`${document}: link to ${match[1]}`);
      continue;
    }
    if (!exists(normalize(join(dirname(document), target)))) broken.push(`${document}: link to ${match[1]}`);
  }
  return broken;
}

/** File names mentioned in the text: in backticks (`src/x.ts`, `docs/y.md`) or bare (`protocol.md`). */
function missingMentions(
  document: string,
  markdown: string,
  exists: (path: string) => boolean = existsSync,
): string[] {
  // A link's text may name a file elsewhere (an upstream page); relative targets are checked above.
  const text = prose(markdown)
    .replace(/\[[^\]]*\]\([a-z][a-z0-9+.-]*:[^)]*\)/gi, '')
    .replace(/\]\([^)]*\)/g, ']');
  const mentioned = new Set<string>();
  for (const match of text.matchAll(/`([^`\s]+)`/g)) {
    const name = match[1]!;
    if (/^(src|test|docs|bench|scripts)\/[\w./-]*\.(ts|mjs|md)$/.test(name) || /^[\w./-]+\.md$/.test(name)) {
      mentioned.add(name);
    }
  }
  for (const match of text.replace(/`[^`]*`/g, '').matchAll(/(?<![\w/.-])([\w./-]+\.md)\b/g)) {
    mentioned.add(match[1]!);
  }
  return [...mentioned]
    .filter((name) => !exists(normalize(join(dirname(document), name))) && !exists(normalize(name)))
    .map((name) => `${document}: mentions ${name}`);
}

test('the checks catch a link or a file name that does not exist', () => {
  const markdown = [
    'See [the protocol](protocol.md#topics), [the CLI](cli.md) and [upstream.md](https://example.com/upstream.md).',
    'The spec is in `shared/spec/prov_transport_mqtt_ws_client_requirements.md`; the vector in protocol.md.',
    'Code: `src/index.ts`, `test/nothing-here.test.ts`.',
    '```sh',
    'cat not-checked.md',
    '```',
  ].join('\n');
  const exists = (path: string): boolean => ['docs/cli.md', 'src/index.ts'].includes(path);
  assert.deepEqual(brokenLinks('docs/x.md', markdown, exists), ['docs/x.md: link to protocol.md#topics']);
  assert.deepEqual(missingMentions('docs/x.md', markdown, exists).sort(), [
    'docs/x.md: mentions protocol.md',
    'docs/x.md: mentions shared/spec/prov_transport_mqtt_ws_client_requirements.md',
    'docs/x.md: mentions test/nothing-here.test.ts',
  ]);
});

for (const document of DOCUMENTS) {
  test(`${document}: every relative link points to an existing file`, () => {
    assert.deepEqual(brokenLinks(document, readFileSync(document, 'utf8')), []);
  });

  test(`${document}: every file it names exists`, () => {
    assert.deepEqual(missingMentions(document, readFileSync(document, 'utf8')), []);
  });
}
