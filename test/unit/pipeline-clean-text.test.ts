// Clean text: control characters, escape sequences and lone surrogates never reach the store, whatever a collector emits.
import { expect } from 'chai';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { EVENT_CATALOG, type CollectedEventName, type DcpEvent } from '../../src/api/event.js';
import { cleanStrings, cleanText, isCleanText, MULTILINE_FIELDS } from '../../src/pipeline/clean-text.js';
import { exampleEvent } from '../../src/pipeline/examples.js';
import { PiiGuard } from '../../src/pipeline/guard.js';
import { Ingest } from '../../src/pipeline/ingest.js';
import { eventSchema } from '../../src/pipeline/schema.js';
import { EventValidator, validateEvent } from '../../src/pipeline/validate.js';
import { dirty } from './planted-text.js';

const T = new Date('2026-11-24T21:00:00.000Z');
const NAMES = Object.keys(EVENT_CATALOG) as CollectedEventName[];
const EXAMPLES: DcpEvent[] = NAMES.map((n) => exampleEvent(n, T));
const withField = (e: DcpEvent, field: string, value: string): DcpEvent => ({ ...e, data: { ...e.data, [field]: value } });

/** Every free-text slot of every event: (event, field) whose example value is not a fixed format. */
const FREE_TEXT = new Set(['osName', 'osImage', 'kernelVersion', 'architecture', 'model', 'containerRuntimeVersion', 'reason', 'message', 'stackTrace', 'component']);
const textSlots: [DcpEvent, string][] = EXAMPLES.flatMap((e) => Object.keys(e.data).filter((k) => FREE_TEXT.has(k)).map((k) => [e, k] as [DcpEvent, string]));

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const C0_C1 = /[\u0000-\u001f\u007f-\u009f]/;
const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('pipeline: clean text', function () {
  it('cleans the osImage of the issue into one plain line', function () {
    expect(cleanText('Ubuntu\u0001\u0002\u001b[31mred\u001b[0m\r\nInjected: yes')).to.equal('Ubuntured Injected: yes');
  });

  it('keeps line breaks and tabs in multi-line text, as LF, and drops every other control', function () {
    expect(cleanText('panic: x\r\n\tat a.b\rnext\u0007\u001b[1m!', 'multiline')).to.equal('panic: x\n\tat a.b\nnext!');
  });

  it('replaces a lone surrogate with U+FFFD and keeps a pair', function () {
    expect(cleanText('a\ud800b\udc00c')).to.equal('a\ufffdb\ufffdc');
    expect(cleanText('emoji \ud83d\ude00 ok')).to.equal('emoji \ud83d\ude00 ok');
  });

  it('returns clean strings and clean events as they are, without a copy', function () {
    const e = exampleEvent('HostError', T);
    expect(cleanStrings(e)).to.equal(e);
    expect(cleanText('Ubuntu 24.04.2 LTS')).to.equal('Ubuntu 24.04.2 LTS');
  });

  it('leaves no control character or lone surrogate, and is idempotent (property)', function () {
    fc.assert(
      fc.property(dirty, fc.constantFrom('line' as const, 'multiline' as const), (s, shape) => {
        const out = cleanText(s, shape);
        expect(LONE.test(out)).to.equal(false);
        const controls = [...out].filter((ch) => C0_C1.test(ch));
        expect(controls.every((ch) => shape === 'multiline' && (ch === '\n' || ch === '\t'))).to.equal(true);
        expect(cleanText(out, shape)).to.equal(out);
        return isCleanText(out, shape);
      }),
      { numRuns: 2000 },
    );
  });

  it('treats as multi-line exactly the fields the schema lets span lines', function () {
    const multiline = new Set<string>();
    const defs = (eventSchema() as { $defs: Record<string, { properties?: Record<string, { $ref?: string; pattern?: string }> }> }).$defs;
    const textPattern = (defs as unknown as Record<string, { pattern: string }>)['text']?.pattern;
    for (const def of Object.values(defs)) {
      for (const [field, p] of Object.entries(def.properties ?? {})) if (p.$ref === '#/$defs/text' || (p.pattern !== undefined && p.pattern === textPattern)) multiline.add(field);
    }
    expect([...multiline].sort()).to.deep.equal([...MULTILINE_FIELDS].sort());
  });
});

describe('pipeline: the schema forbids unclean text', function () {
  it('refuses a control character, an escape sequence or a lone surrogate in any free-text field', function () {
    for (const [event, field] of textSlots) {
      for (const bad of ['a\u0001b', 'red\u001b[31m', 'x\u0085y', 'lone \ud800', 'cr\rlf']) {
        expect(validateEvent(withField(event, field, bad)).ok, `${event.name}.${field} ${JSON.stringify(bad)}`).to.equal(false);
      }
    }
  });

  it('lets message and stackTrace span lines, and no other field', function () {
    for (const [event, field] of textSlots) {
      expect(validateEvent(withField(event, field, 'one\n\ttwo')).ok, `${event.name}.${field}`).to.equal(MULTILINE_FIELDS.has(field));
    }
  });
});

describe('pipeline: ingest cleans every string before the schema and the guard', function () {
  function ingest(): { ingest: Ingest; stored: DcpEvent[] } {
    const stored: DcpEvent[] = [];
    const registry = new Registry();
    return {
      stored,
      ingest: new Ingest({
        validator: new EventValidator({ registry }),
        guard: new PiiGuard({ registry }),
        store: {
          append(events) {
            stored.push(...events);
            return Promise.resolve({ stored: events.length, duplicates: 0, expired: 0 });
          },
        },
      }),
    };
  }

  it('stores an event with dirt planted in any free-text field, cleaned and valid (property)', async function () {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...textSlots), dirty, async ([event, field], value) => {
        const { ingest: i, stored } = ingest();
        const result = await i.submit([withField(event, field, `v1 ${value}`)]);
        // Whatever was planted, nothing unclean is stored; the event is stored unless cleaning left a finding.
        for (const e of stored) {
          expect(validateEvent(e).ok).to.equal(true);
          expect(JSON.stringify(e)).to.not.match(/\\u00[01][0-9a-f]|\\u007f|\\ud[89a-f]/i);
          expect(isCleanText(String(e.data[field]), MULTILINE_FIELDS.has(field) ? 'multiline' : 'line')).to.equal(true);
        }
        return result.invalid === 0;
      }),
      { numRuns: 500 },
    );
  });

  it('lets the guard see an address that control characters and escape sequences were planted to split', async function () {
    const { ingest: i, stored } = ingest();
    const event = withField(exampleEvent('HostError', T), 'message', 'login by bob\u0001@\u001b[0mexample.com from 10.\u00000.0.7');
    const result = await i.submit([event]);
    expect(result.rejected).to.equal(1);
    expect(stored).to.deep.equal([]);
  });
});
