/**
 * query/sql.ts — the SQL subset, compiled onto the JSON query.
 *
 * Invariant: a statement either compiles to a JSON `Query` that means exactly what the SQL says, or fails with
 * SQL_PARSE_ERROR / SQL_UNSUPPORTED / QUERY_UNKNOWN_COLUMN naming the construct and its line and column — never a
 * silently different answer. Parsing is node-sql-parser's (PostgresQL dialect, which also reads ClickHouse-style
 * `countIf` and `FILTER (WHERE …)`); this module only maps the tree.
 *
 * Shape of what maps: one SELECT from one datasource; WHERE = top-level AND of time bounds on the time field and
 * dimension predicates (=, <>, IN, NOT IN, IS [NOT] NULL, AND, OR, NOT); SELECT items that are group-by
 * dimensions, one time bucket (date_trunc, time_bucket, toStartOf*), aggregates (count, sum, min, max, avg,
 * count(DISTINCT), uniqExact, the -If forms, FILTER (WHERE …)) and arithmetic over aggregates; GROUP BY, HAVING,
 * ORDER BY, LIMIT, OFFSET. Every aggregate is given an internal output name (`#a0`, …) so equal aggregates are
 * computed once; the SELECT list is then projected back in order under its SQL names.
 */
import nodeSqlParser from 'node-sql-parser';
import { TallyError } from '../errors.js';
import { SQL_PARSE_CACHE, type Limits } from '../limits.js';
import type { Datasource } from '../schema/datasource.js';
import { parseDuration, parseTimestamp, MAX_TIMESTAMP_MS } from '../time.js';
import type { Aggregation, AggregationType, Expr, Filter, Having, OrderBy, PostAggregation, Query } from './shape.js';

const { Parser } = nodeSqlParser;
const parser = new Parser();

/* eslint-disable @typescript-eslint/no-explicit-any -- the parser's AST is untyped JSON */
type Node = any;

interface Loc { line: number; column: number }

export interface CompiledSql {
  query: Query;
  /** Output columns in SELECT order: the SQL name and the JSON result column it is read from. */
  select: { name: string; source: string }[];
}

export interface SqlContext {
  now: number;
  limits: Limits;
  datasource(name: string): Datasource;
}

type Value =
  | { kind: 'dim'; name: string }
  | { kind: 'time'; granularity: string }
  | { kind: 'num'; value: number }
  | { kind: 'agg'; name: string }
  | { kind: 'expr'; expr: Expr };

const TIME_COLUMN = '#t';

export function compileSql(text: unknown, ctx: SqlContext): CompiledSql {
  if (typeof text !== 'string' || text.trim().length === 0) {
    throw new TallyError('SQL_PARSE_ERROR', 'sql: want a non-empty SQL string');
  }
  if (text.length > ctx.limits.maxSqlLength) {
    throw new TallyError('SQL_TOO_LONG', `sql: got ${text.length} characters; want at most ${ctx.limits.maxSqlLength}`, { limit: ctx.limits.maxSqlLength });
  }
  let ast = parse(text);
  if (Array.isArray(ast)) {
    if (ast.length !== 1) throw new TallyError('SQL_UNSUPPORTED', `sql: got ${ast.length} statements; want exactly one SELECT`);
    ast = ast[0];
  }
  return new Compiler(text, ctx).compile(ast);
}

/**
 * Parsed statements by text, in order of last use (a Map iterates in insertion order: the first key is the least
 * recently used). A cached tree is deep-frozen: the compiler only reads it, and a write would throw, not leak into
 * the next query. `now()` and the datasource are resolved by the compiler on every call, never cached.
 */
const parsed = new Map<string, Node>();
/** Parses done by node-sql-parser (tests check that a repeated statement is parsed once). */
export const sqlParseStats = { parses: 0 };

function parse(text: string): Node {
  const hit = parsed.get(text);
  if (hit !== undefined) {
    parsed.delete(text);
    parsed.set(text, hit);
    return hit;
  }
  let ast: Node;
  try {
    sqlParseStats.parses++;
    ast = parser.astify(text, { database: 'PostgresQL', parseOptions: { includeLocations: true } } as never);
  } catch (e: any) {
    const start = e?.location?.start;
    const where = start ? ` at line ${start.line}, column ${start.column}` : '';
    const found = e?.found === null || e?.found === undefined ? 'end of input' : JSON.stringify(e.found);
    throw new TallyError('SQL_PARSE_ERROR', `sql: syntax error${where}: unexpected ${found}`, start ? { line: start.line, column: start.column } : undefined);
  }
  if (text.length <= SQL_PARSE_CACHE.maxChars) {
    deepFreeze(ast);
    parsed.set(text, ast);
    if (parsed.size > SQL_PARSE_CACHE.entries) parsed.delete(parsed.keys().next().value!);
  }
  return ast;
}

function deepFreeze(node: Node): void {
  if (node === null || typeof node !== 'object' || Object.isFrozen(node)) return;
  Object.freeze(node);
  for (const v of Object.values(node)) deepFreeze(v);
}

class Compiler {
  private ds!: Datasource;
  private loc: Loc | null = null;
  private readonly aggregations: Aggregation[] = [];
  private readonly aggByKey = new Map<string, string>();
  private readonly posts: PostAggregation[] = [];
  private granularity: string | null = null;

  constructor(private readonly text: string, private readonly ctx: SqlContext) {}

  private unsupported(what: string): never {
    const where = this.loc === null ? '' : ` at line ${this.loc.line}, column ${this.loc.column}`;
    throw new TallyError('SQL_UNSUPPORTED', `sql${where}: ${what}`, this.loc === null ? undefined : { ...this.loc });
  }

  private enter(node: Node): void {
    if (node?.loc?.start) this.loc = { line: node.loc.start.line, column: node.loc.start.column };
  }

  /** The expression as the user wrote it, or as the parser renders it when it kept no location. */
  private sourceText(node: Node): string | null {
    const s = node?.loc?.start?.offset;
    const e = node?.loc?.end?.offset;
    if (typeof s === 'number' && typeof e === 'number') return this.text.slice(s, e).trim();
    let rendered: string;
    try {
      rendered = parser.exprToSQL(node, { database: 'PostgresQL' } as never);
    } catch {
      return null;
    }
    // The parser renders keywords in capitals (COUNT(*)); prefer the spelling the user wrote when it is there.
    const at = this.text.toLowerCase().indexOf(rendered.toLowerCase());
    return at >= 0 ? this.text.slice(at, at + rendered.length) : rendered;
  }

  compile(ast: Node): CompiledSql {
    this.enter(ast);
    if (ast?.type !== 'select') this.unsupported(`${String(ast?.type ?? 'this').toUpperCase()} statements are not supported; want SELECT`);
    if (ast.with) this.unsupported('WITH is not supported');
    if (ast.distinct?.type) this.unsupported('SELECT DISTINCT is not supported; use GROUP BY');
    if (ast.window) this.unsupported('WINDOW is not supported');
    if (!Array.isArray(ast.from) || ast.from.length !== 1) this.unsupported('want exactly one datasource in FROM (no joins, no FROM-less SELECT)');
    const from = ast.from[0];
    if (typeof from.table !== 'string' || from.expr || from.join) this.unsupported('want FROM <datasource> (no subqueries or joins)');
    this.ds = this.ctx.datasource(from.table);

    // WHERE: time bounds + dimension filter.
    let lo = 0;
    let hi = MAX_TIMESTAMP_MS + 1;
    const filters: Filter[] = [];
    for (const term of this.conjuncts(ast.where)) {
      const bound = this.timeBound(term);
      if (bound !== null) {
        lo = Math.max(lo, bound.from);
        hi = Math.min(hi, bound.to);
      } else {
        filters.push(this.condition(term));
      }
    }

    // SELECT list.
    if (!Array.isArray(ast.columns)) this.unsupported('SELECT * is not supported; tallydb answers aggregate queries — name aggregates such as count(*)');
    const items = ast.columns.map((c: Node, i: number) => {
      this.enter(c.expr);
      if (c.expr?.type === 'star' || c.expr?.column === '*') this.unsupported('SELECT * is not supported; name aggregates such as count(*)');
      const value = this.value(c.expr);
      const name: string = typeof c.as === 'string' && c.as.length > 0 ? c.as : this.sourceText(c.expr) ?? (value.kind === 'dim' ? value.name : `column${i + 1}`);
      return { node: c.expr, value, name };
    });

    // GROUP BY.
    const groupBy: string[] = [];
    const groupNodes: Node[] = ast.groupby?.columns ?? (Array.isArray(ast.groupby) ? ast.groupby : []);
    for (const g of groupNodes) {
      this.enter(g);
      const v = this.resolveRef(g, items);
      if (v.kind === 'dim') {
        if (!groupBy.includes(v.name)) groupBy.push(v.name);
      } else if (v.kind === 'time') {
        if (this.granularity !== null && this.granularity !== v.granularity) this.unsupported('GROUP BY holds two different time buckets; want at most one');
        this.granularity = v.granularity;
      } else {
        this.unsupported('GROUP BY takes dimensions and one time bucket, not aggregates');
      }
    }
    // Selected dimensions and time buckets must be grouped.
    for (const it of items) {
      this.enter(it.node);
      if (it.value.kind === 'dim' && !groupBy.includes(it.value.name)) this.unsupported(`column '${it.value.name}' must appear in GROUP BY or inside an aggregate`);
      if (it.value.kind === 'time' && this.granularity !== it.value.granularity) this.unsupported(`the time bucket '${it.name}' must appear in GROUP BY`);
      if (it.value.kind === 'num') this.unsupported('a constant alone is not a supported SELECT item');
    }

    // HAVING.
    const having = ast.having ? this.having(ast.having, items, groupBy) : undefined;

    // ORDER BY.
    const orderBy: OrderBy[] = [];
    for (const o of ast.orderby ?? []) {
      this.enter(o.expr);
      if (o.nulls && !/last/i.test(String(o.nulls))) this.unsupported('NULLS FIRST is not supported; nulls sort last');
      const v = this.resolveRef(o.expr, items);
      orderBy.push({ column: this.outputColumn(v, groupBy), direction: String(o.type ?? 'ASC').toUpperCase() === 'DESC' ? 'desc' : 'asc' });
    }

    // LIMIT / OFFSET.
    let limit: number | undefined;
    let offset: number | undefined;
    const lim = ast.limit?.value ?? [];
    if (lim.length > 0) {
      const nums = lim.map((x: Node) => {
        this.enter(x);
        if (x?.type !== 'number' || !Number.isSafeInteger(x.value) || x.value < 0) this.unsupported('LIMIT and OFFSET take non-negative integer literals');
        return x.value as number;
      });
      [limit, offset] = nums; // LIMIT n [OFFSET m]
    }

    const select = items.map((it: { value: Value; name: string }) => ({ name: it.name, source: this.outputColumn(it.value, groupBy) }));
    const query: Query = {
      datasource: this.ds.name, granularity: this.granularity ?? 'all', timeColumn: TIME_COLUMN,
      groupBy, aggregations: this.aggregations, postAggregations: this.posts, orderBy,
    };
    if (lo > 0) query.from = lo;
    if (hi <= MAX_TIMESTAMP_MS) query.to = Math.max(lo, hi);
    if (filters.length === 1) query.filter = filters[0]!;
    if (filters.length > 1) query.filter = { and: filters };
    if (having !== undefined) query.having = having;
    if (limit !== undefined) query.limit = limit;
    if (offset !== undefined) query.offset = offset;
    return { query, select };
  }

  // ---- WHERE ------------------------------------------------------------------------------------------------

  private conjuncts(node: Node): Node[] {
    if (node === null || node === undefined) return [];
    if (node.type === 'binary_expr' && node.operator === 'AND') return [...this.conjuncts(node.left), ...this.conjuncts(node.right)];
    return [node];
  }

  private isTimeRef(node: Node): boolean {
    return node?.type === 'column_ref' && this.columnName(node) === this.ds.timeField;
  }

  /** A top-level comparison of the time field with a constant, as [from, to); null when not about time. */
  private timeBound(node: Node): { from: number; to: number } | null {
    this.enter(node);
    if (node?.type !== 'binary_expr') return null;
    const op: string = node.operator;
    if (op === 'BETWEEN' && this.isTimeRef(node.left)) {
      const [a, b] = node.right.value;
      return { from: this.timeValue(a), to: this.timeValue(b) + 1 };
    }
    const flip: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '=': '=' };
    let o = op;
    let other: Node;
    if (this.isTimeRef(node.left)) other = node.right;
    else if (this.isTimeRef(node.right) && flip[op] !== undefined) {
      other = node.left;
      o = flip[op]!;
    } else return null;
    const t = this.timeValue(other);
    switch (o) {
      case '>=': return { from: t, to: MAX_TIMESTAMP_MS + 1 };
      case '>': return { from: t + 1, to: MAX_TIMESTAMP_MS + 1 };
      case '<': return { from: 0, to: t };
      case '<=': return { from: 0, to: t + 1 };
      case '=': return { from: t, to: t + 1 };
      default: return this.unsupported(`operator ${op} on the time field '${this.ds.timeField}'; want =, <, <=, >, >= or BETWEEN`);
    }
  }

  /** A constant instant: epoch ms, an ISO string, TIMESTAMP '…', now(), and ± INTERVAL arithmetic. */
  private timeValue(node: Node): number {
    this.enter(node);
    switch (node?.type) {
      case 'number': {
        const t = parseTimestamp(node.value);
        if (!t.ok) this.unsupported(`time value: ${t.message}`);
        return t.ms;
      }
      case 'single_quote_string': case 'string': case 'timestamp': case 'datetime': {
        // A SQL timestamp literal without a zone is read as UTC.
        const raw = String(node.value);
        const zoned = /[zZ]|[+-]\d{2}:?\d{2}$/.test(raw) || !/\d{2}:\d{2}/.test(raw) ? raw : `${raw}Z`;
        const t = parseTimestamp(zoned);
        if (!t.ok) this.unsupported(`time value: ${t.message}`);
        return t.ms;
      }
      case 'function': {
        const name = this.functionName(node).toLowerCase();
        if (name === 'now' || name === 'current_timestamp') return this.ctx.now;
        return this.unsupported(`function ${name}() as a time value; want now(), a number of epoch ms or an ISO-8601 string`);
      }
      case 'binary_expr': {
        if (node.operator !== '+' && node.operator !== '-') break;
        const base = this.timeValue(node.left);
        const delta = this.interval(node.right);
        return node.operator === '+' ? base + delta : base - delta;
      }
    }
    return this.unsupported('this time value; want now() [± INTERVAL …], epoch ms or an ISO-8601 string');
  }

  private interval(node: Node): number {
    this.enter(node);
    if (node?.type !== 'interval') this.unsupported('want INTERVAL n unit after + or - on a time value');
    const amount = node.expr?.value;
    const unit = typeof node.unit === 'string' ? node.unit : '';
    const ms = parseDuration(unit ? `${amount} ${unit}` : String(amount));
    if (ms === undefined) this.unsupported(`INTERVAL ${amount} ${unit}: want a whole number of seconds, minutes, hours, days or weeks`);
    return ms;
  }

  /** A dimension predicate tree. */
  private condition(node: Node): Filter {
    this.enter(node);
    const negated = this.negated(node);
    if (negated !== null) return { not: this.condition(negated) };
    if (node?.type !== 'binary_expr') this.unsupported('this condition; want comparisons of dimensions with strings combined by AND, OR, NOT');
    const op = String(node.operator).toUpperCase();
    if (op === 'AND' || op === 'OR') {
      const kids = [node.left, node.right].map((c) => this.condition(c));
      const key = op === 'AND' ? 'and' : 'or';
      const flat = kids.flatMap((k) => (key in k ? (k as Record<string, Filter[]>)[key]! : [k]));
      return (key === 'and' ? { and: flat } : { or: flat });
    }
    if (this.isTimeRef(node.left) || this.isTimeRef(node.right)) {
      this.unsupported(`a condition on the time field '${this.ds.timeField}' inside OR, NOT or an aggregate; time bounds must be top-level AND terms of WHERE`);
    }
    let colNode = node.left;
    let valNode = node.right;
    if (colNode?.type !== 'column_ref' && valNode?.type === 'column_ref' && (op === '=' || op === '<>' || op === '!=')) [colNode, valNode] = [valNode, colNode];
    const dim = this.dimension(colNode);
    switch (op) {
      case '=': return { dimension: dim, eq: this.stringLiteral(valNode) };
      case '<>': case '!=': return { not: { dimension: dim, eq: this.stringLiteral(valNode) } };
      case 'IN': case 'NOT IN': {
        if (valNode?.type !== 'expr_list') this.unsupported('IN takes a list of string literals');
        const f: Filter = { dimension: dim, in: valNode.value.map((v: Node) => this.stringLiteral(v)) };
        return op === 'IN' ? f : { not: f };
      }
      case 'IS': case 'IS NOT': {
        if (valNode?.type !== 'null') this.unsupported(`${op} takes NULL`);
        const f: Filter = { dimension: dim, eq: null };
        return op === 'IS' ? f : { not: f };
      }
      default:
        return this.unsupported(`operator ${op} on dimension '${dim}'; want =, <>, IN, NOT IN, IS [NOT] NULL`);
    }
  }

  /** The operand of NOT, which the parser gives as a unary operator or, before a parenthesis, as a function NOT(…). */
  private negated(node: Node): Node | null {
    if (node?.type === 'unary_expr' && String(node.operator).toUpperCase() === 'NOT') return node.expr;
    if (node?.type === 'function' && this.functionName(node).toUpperCase() === 'NOT' && node.args?.value?.length === 1) return node.args.value[0];
    return null;
  }

  private stringLiteral(node: Node): string {
    this.enter(node);
    if (node?.type === 'single_quote_string' || node?.type === 'string') return String(node.value);
    if (node?.type === 'null') this.unsupported("comparison with NULL is never true; use IS NULL or IS NOT NULL");
    return this.unsupported("dimensions are strings; compare them with a 'quoted string' (double quotes name columns)");
  }

  private columnName(node: Node): string {
    const c = node?.column;
    if (typeof c === 'string') return c;
    return String(c?.expr?.value ?? '');
  }

  private dimension(node: Node): string {
    if (node?.type !== 'column_ref') this.unsupported('want a dimension name on one side of the comparison');
    const name = this.columnName(node);
    if (this.ds.dimensions.includes(name)) return name;
    if (this.ds.metrics.some((m) => m.name === name)) this.unsupported(`filtering on metric '${name}' is not supported; WHERE compares dimensions and the time field`);
    return this.unknownColumn(name);
  }

  private unknownColumn(name: string): never {
    const where = this.loc === null ? '' : ` at line ${this.loc.line}, column ${this.loc.column}`;
    throw new TallyError('QUERY_UNKNOWN_COLUMN', `sql${where}: column '${name}' is not in datasource '${this.ds.name}'; want one of ${[this.ds.timeField, ...this.ds.dimensions, ...this.ds.metrics.map((m) => m.name)].join(', ')}`, this.loc === null ? undefined : { ...this.loc });
  }

  private functionName(node: Node): string {
    const n = node?.name;
    if (typeof n === 'string') return n;
    if (Array.isArray(n?.name)) return n.name.map((p: Node) => p.value).join('.');
    return String(n ?? '');
  }

  // ---- SELECT values ----------------------------------------------------------------------------------------

  /** Map a select-list expression onto a dimension, a time bucket, an aggregate or arithmetic over aggregates. */
  private value(node: Node): Value {
    this.enter(node);
    switch (node?.type) {
      case 'column_ref': {
        const name = this.columnName(node);
        if (this.ds.dimensions.includes(name)) return { kind: 'dim', name };
        if (name === this.ds.timeField) this.unsupported(`the raw time field; group by a bucket such as date_trunc('minute', ${name})`);
        if (this.ds.metrics.some((m) => m.name === name)) this.unsupported(`metric '${name}' outside an aggregate; want sum(${name}), avg(${name}), ...`);
        return this.unknownColumn(name);
      }
      case 'number':
        return { kind: 'num', value: Number(node.value) };
      case 'aggr_func':
        return this.aggregate(String(node.name).toLowerCase(), node, node.args);
      case 'function': {
        const name = this.functionName(node).toLowerCase();
        const bucket = this.timeBucket(name, node);
        if (bucket !== null) return { kind: 'time', granularity: bucket };
        return this.aggregate(name, node, node.args);
      }
      case 'unary_expr': {
        if (node.operator !== '-') break;
        const inner = this.value(node.expr);
        return { kind: 'expr', expr: { op: '-', left: 0, right: this.expr(inner) } };
      }
      case 'binary_expr': {
        const op = node.operator;
        if (op !== '+' && op !== '-' && op !== '*' && op !== '/') break;
        const l = this.value(node.left);
        const r = this.value(node.right);
        this.enter(node);
        return { kind: 'expr', expr: { op, left: this.expr(l), right: this.expr(r) } };
      }
    }
    return this.unsupported('this expression; want a dimension, a time bucket, an aggregate, or + - * / over aggregates');
  }

  private expr(v: Value): Expr {
    switch (v.kind) {
      case 'num': return v.value;
      case 'agg': return { ref: v.name };
      case 'expr': return v.expr;
      default: return this.unsupported('arithmetic takes aggregates and numbers, not dimensions or time buckets');
    }
  }

  private timeBucket(name: string, node: Node): string | null {
    const args: Node[] = node.args?.value ?? [];
    const onTime = (arg: Node): void => {
      if (!this.isTimeRef(arg)) this.unsupported(`${name}() takes the time field '${this.ds.timeField}'`);
    };
    const starts: Record<string, string> = {
      tostartofminute: 'minute', tostartofhour: 'hour', tostartofday: 'day',
      tostartoffiveminutes: '5 minutes', tostartoffiveminute: '5 minutes', tostartoffifteenminutes: '15 minutes',
    };
    if (starts[name] !== undefined) {
      if (args.length !== 1) this.unsupported(`${name}() takes one argument`);
      onTime(args[0]);
      return starts[name]!;
    }
    if (name === 'date_trunc') {
      if (args.length !== 2) this.unsupported("date_trunc takes ('minute' | 'hour' | 'day', time field)");
      const unit = String(args[0]?.value ?? '').toLowerCase();
      if (unit !== 'minute' && unit !== 'hour' && unit !== 'day') this.unsupported(`date_trunc('${unit}', …): want 'minute', 'hour' or 'day'`);
      onTime(args[1]);
      return unit;
    }
    if (name === 'time_bucket' || name === 'tostartofinterval') {
      if (args.length !== 2) this.unsupported(`${name} takes two arguments`);
      const [a, b] = name === 'time_bucket' ? [args[0], args[1]] : [args[1], args[0]];
      onTime(b);
      const ms = a?.type === 'interval' ? this.interval(a) : parseDuration(a?.value);
      if (ms === undefined) this.unsupported(`${name}: want a duration such as '5 minutes'`);
      return `${ms}ms`;
    }
    return null;
  }

  private aggregate(name: string, node: Node, args: Node): Value {
    // Normalise the argument list across aggr_func ({ expr }) and function ({ value: [...] }) nodes.
    const list: Node[] = Array.isArray(args?.value) ? args.value : args?.expr !== undefined ? [args.expr] : [];
    const distinct = args?.distinct === 'DISTINCT';
    const filterNode = node.filter?.where;
    const plain: Record<string, AggregationType> = { count: 'count', sum: 'sum', min: 'min', max: 'max', avg: 'avg' };
    const iff: Record<string, AggregationType> = { countif: 'count', sumif: 'sum', minif: 'min', maxif: 'max', avgif: 'avg', uniqexactif: 'distinctCount', uniqif: 'distinctCount' };
    let type: AggregationType;
    let target: Node | undefined;
    let cond: Node | undefined;
    if (name === 'uniqexact' || name === 'uniq' || name === 'countdistinct' || (name === 'count' && distinct)) {
      type = 'distinctCount';
      if (list.length !== 1) this.unsupported(`${name}() takes one dimension`);
      target = list[0];
    } else if (plain[name] !== undefined) {
      type = plain[name]!;
      if (distinct) this.unsupported(`${name}(DISTINCT …) is not supported`);
      if (list.length > 1) this.unsupported(`${name}() takes one argument`);
      target = list[0];
      if (type !== 'count' && target === undefined) this.unsupported(`${name}() needs a metric`);
    } else if (iff[name] !== undefined) {
      type = iff[name]!;
      const want = type === 'count' ? 1 : 2;
      if (list.length !== want) this.unsupported(`${name}() takes ${want === 1 ? '(condition)' : '(column, condition)'}`);
      target = want === 2 ? list[0] : undefined;
      cond = list[want - 1];
    } else {
      return this.unsupported(`function ${name}() is not supported`);
    }
    if (cond !== undefined && filterNode !== undefined) this.unsupported('both an -If condition and FILTER (WHERE …)');
    const condNode = cond ?? filterNode;
    const agg: Aggregation = { name: '', type };
    let extra: Filter | undefined;
    if (target !== undefined && target.type !== 'star') {
      if (target.type !== 'column_ref') this.unsupported(`${name}() takes a column name`);
      const col = this.columnName(target);
      if (col === this.ds.timeField) this.unsupported(`${name}(${col}): the time field is not a metric; group by a time bucket such as date_trunc('minute', ${col}) instead`);
      const isDim = this.ds.dimensions.includes(col);
      const isMetric = this.ds.metrics.some((m) => m.name === col);
      if (type === 'distinctCount') {
        if (!isDim) return isMetric ? this.unsupported(`distinct count of metric '${col}'; distinct counts take a dimension`) : this.unknownColumn(col);
        agg.dimension = col;
      } else if (isMetric) {
        agg.metric = col;
      } else if (type === 'count' && isDim) {
        extra = { not: { dimension: col, eq: null } }; // count(dim): rows where dim is not null
      } else if (isDim) {
        this.unsupported(`${name}() of dimension '${col}'; ${name} takes a metric`);
      } else {
        this.unknownColumn(col);
      }
    }
    const filters: Filter[] = [];
    if (condNode !== undefined) filters.push(this.condition(condNode));
    if (extra !== undefined) filters.push(extra);
    if (filters.length === 1) agg.filter = filters[0]!;
    if (filters.length > 1) agg.filter = { and: filters };
    const key = JSON.stringify({ ...agg, name: '' });
    let internal = this.aggByKey.get(key);
    if (internal === undefined) {
      internal = `#a${this.aggregations.length}`;
      agg.name = internal;
      this.aggregations.push(agg);
      this.aggByKey.set(key, internal);
    }
    return { kind: 'agg', name: internal };
  }

  // ---- GROUP BY / ORDER BY / HAVING references --------------------------------------------------------------

  /** A GROUP BY / ORDER BY / HAVING item: a select position, a select alias, or an expression. */
  private resolveRef(node: Node, items: { value: Value; name: string }[]): Value {
    this.enter(node);
    if (node?.type === 'number') {
      const i = Number(node.value);
      if (!Number.isInteger(i) || i < 1 || i > items.length) this.unsupported(`position ${node.value}; want 1..${items.length}`);
      return items[i - 1]!.value;
    }
    if (node?.type === 'column_ref') {
      const name = this.columnName(node);
      // A dimension name means the dimension; any other name may be a SELECT alias.
      const byAlias = this.ds.dimensions.includes(name) ? undefined : items.find((it) => it.name === name);
      if (byAlias !== undefined) return byAlias.value;
    }
    return this.value(node);
  }

  /** The JSON result column that holds a value, adding a hidden post-aggregation for arithmetic. */
  private outputColumn(v: Value, groupBy: string[]): string {
    switch (v.kind) {
      case 'dim':
        if (!groupBy.includes(v.name)) this.unsupported(`column '${v.name}' must appear in GROUP BY`);
        return v.name;
      case 'time':
        if (this.granularity !== v.granularity) this.unsupported('the time bucket must appear in GROUP BY');
        return TIME_COLUMN;
      case 'agg':
        return v.name;
      case 'expr': {
        const key = JSON.stringify(v.expr);
        const existing = this.posts.find((p) => JSON.stringify(p.expr) === key);
        if (existing !== undefined) return existing.name;
        const name = `#p${this.posts.length}`;
        this.posts.push({ name, expr: v.expr });
        return name;
      }
      case 'num':
        return this.unsupported('a constant is not a column');
    }
  }

  private having(node: Node, items: { value: Value; name: string }[], groupBy: string[]): Having {
    this.enter(node);
    const negated = this.negated(node);
    if (negated !== null) return { not: this.having(negated, items, groupBy) };
    if (node?.type !== 'binary_expr') this.unsupported('HAVING takes comparisons of aggregates with constants, combined by AND, OR, NOT');
    const op = String(node.operator).toUpperCase();
    if (op === 'AND') return { and: [this.having(node.left, items, groupBy), this.having(node.right, items, groupBy)] };
    if (op === 'OR') return { or: [this.having(node.left, items, groupBy), this.having(node.right, items, groupBy)] };
    const ops: Record<string, string> = { '=': '=', '<>': '!=', '!=': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };
    const flip: Record<string, string> = { '=': '=', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };
    if (ops[op] === undefined) this.unsupported(`operator ${op} in HAVING`);
    const literal = (n: Node): number | string | null | undefined =>
      n?.type === 'number' ? Number(n.value) : n?.type === 'single_quote_string' ? String(n.value) : n?.type === 'null' ? null : undefined;
    let o = ops[op]!;
    let ref = node.left;
    let lit = literal(node.right);
    if (lit === undefined) {
      lit = literal(node.left);
      ref = node.right;
      o = flip[o]!;
    }
    if (lit === undefined) this.unsupported('HAVING compares an aggregate or column with a constant');
    const v = this.resolveRef(ref, items);
    return { column: this.outputColumn(v, groupBy), op: o as '=', value: lit };
  }
}
