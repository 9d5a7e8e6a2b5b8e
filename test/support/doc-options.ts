// Checks the option names that the documentation's code examples pass to register(),
// new ProvisioningClient(), client.register() and startEmulator() against the real option types,
// read with the TypeScript checker: a renamed or invented option in a doc fails a test instead of
// being silently ignored by a reader's program.
import { join } from 'node:path';
import ts from 'typescript';

/** What a call accepts: option name -> what that option's value accepts (undefined: not checked). */
export interface OptionShape {
  names: ReadonlySet<string>;
  nested: ReadonlyMap<string, OptionShape>;
}

export interface OptionShapes {
  /** register(options) and new ProvisioningClient(options). */
  client: OptionShape;
  /** register(options, call) and client.register(call). */
  call: OptionShape;
  /** startEmulator(options). */
  emulator: OptionShape;
}

export interface DocOptionProblem {
  file: string;
  line: number;
  call: string;
  option: string;
}

function shapeOf(type: ts.Type, checker: ts.TypeChecker, depth = 0): OptionShape | undefined {
  const members = (type.isUnion() ? type.types : [type]).filter(
    (member) => !(member.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null | ts.TypeFlags.BooleanLike)),
  );
  const objects = members.filter((member) => member.flags & ts.TypeFlags.Object);
  // Free-form values (JSON payloads, index signatures, functions, arrays) have no fixed names.
  if (objects.length === 0 || depth > 3) return undefined;
  if (
    objects.some(
      (member) =>
        checker.getIndexInfosOfType(member).length > 0 ||
        member.getCallSignatures().length > 0 ||
        checker.isArrayType(member),
    )
  ) {
    return undefined;
  }
  const names = new Set<string>();
  const nested = new Map<string, OptionShape>();
  for (const member of objects) {
    for (const property of checker.getPropertiesOfType(member)) {
      names.add(property.name);
      const declaration = property.valueDeclaration ?? property.declarations?.[0];
      if (declaration === undefined) continue;
      const inner = shapeOf(checker.getTypeOfSymbolAtLocation(property, declaration), checker, depth + 1);
      if (inner !== undefined) {
        const known = nested.get(property.name);
        nested.set(
          property.name,
          known === undefined
            ? inner
            : {
                names: new Set([...known.names, ...inner.names]),
                nested: new Map([...known.nested, ...inner.nested]),
              },
        );
      }
    }
  }
  return { names, nested };
}

/** The option shapes of the library, from its sources (the types the user's compiler sees). */
export function optionShapesFromSources(root = '.'): OptionShapes {
  const clientEntry = join(root, 'src', 'index.ts');
  const emulatorEntry = join(root, 'src', 'emulator', 'index.ts');
  const program = ts.createProgram([clientEntry, emulatorEntry], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
  });
  const checker = program.getTypeChecker();
  const parameterShape = (entry: string, exportName: string, index: number): OptionShape => {
    const source = program.getSourceFile(entry);
    if (source === undefined) throw new Error(`cannot read ${entry}`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    if (moduleSymbol === undefined) throw new Error(`${entry} is not a module`);
    let symbol = checker.getExportsOfModule(moduleSymbol).find((item) => item.name === exportName);
    if (symbol === undefined) throw new Error(`${entry} does not export ${exportName}`);
    if (symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    const declaration = symbol.valueDeclaration ?? symbol.declarations?.[0];
    if (declaration === undefined) throw new Error(`${exportName} has no declaration`);
    const type = checker.getTypeOfSymbolAtLocation(symbol, declaration);
    const signature = [...type.getCallSignatures(), ...type.getConstructSignatures()][0];
    const parameter = signature?.getParameters()[index];
    if (parameter === undefined) throw new Error(`${exportName} has no parameter ${index}`);
    const shape = shapeOf(checker.getTypeOfSymbolAtLocation(parameter, declaration), checker);
    if (shape === undefined) throw new Error(`${exportName}'s parameter ${index} is not an options object`);
    return shape;
  };
  return {
    client: parameterShape(clientEntry, 'register', 0),
    call: parameterShape(clientEntry, 'register', 1),
    emulator: parameterShape(emulatorEntry, 'startEmulator', 0),
  };
}

const CODE_FENCE = /^```(ts|typescript|js|javascript|mjs|cjs|tsx)[^\n]*\n([\s\S]*?)^```/gm;

/** Option names in commented-out code at the object's own level: `// endpoint: '...', // why`. */
function commentedOptionNames(literal: ts.ObjectLiteralExpression, source: ts.SourceFile): string[] {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, false, ts.LanguageVariant.Standard, source.text);
  scanner.resetTokenState(literal.getStart(source));
  const names: string[] = [];
  let depth = 0;
  for (let token = scanner.scan(); token !== ts.SyntaxKind.EndOfFileToken; token = scanner.scan()) {
    if (scanner.getTokenEnd() > literal.end) break;
    if (token === ts.SyntaxKind.OpenBraceToken) depth += 1;
    else if (token === ts.SyntaxKind.CloseBraceToken) depth -= 1;
    else if (token === ts.SyntaxKind.SingleLineCommentTrivia && depth === 1) {
      // The part before a second `//` is commented-out code; strings and nested braces hold no names.
      const code = (scanner.getTokenText().slice(2).split('//')[0] ?? '')
        .replace(/'[^']*'|"[^"]*"|`[^`]*`/g, "''")
        .replace(/\{[^{}]*\}/g, '{}');
      if (!/^\s*[A-Za-z_$][\w$]*\s*:/.test(code)) continue;
      for (const match of code.matchAll(/(?:^|[\s,])([A-Za-z_$][\w$]*)\s*:/g)) names.push(match[1]!);
    }
  }
  return names;
}

/** Which options object a call takes, by its callee; undefined for calls we do not check. */
function shapeForCall(
  node: ts.CallExpression | ts.NewExpression,
  argumentIndex: number,
  shapes: OptionShapes,
): { call: string; shape: OptionShape } | undefined {
  const callee = node.expression;
  if (ts.isNewExpression(node)) {
    if (ts.isIdentifier(callee) && callee.text === 'ProvisioningClient' && argumentIndex === 0) {
      return { call: 'new ProvisioningClient()', shape: shapes.client };
    }
    return undefined;
  }
  if (ts.isIdentifier(callee) && callee.text === 'register') {
    return argumentIndex === 0
      ? { call: 'register()', shape: shapes.client }
      : { call: 'register()', shape: shapes.call };
  }
  if (ts.isPropertyAccessExpression(callee) && callee.name.text === 'register' && argumentIndex === 0) {
    return { call: 'client.register()', shape: shapes.call };
  }
  if (ts.isIdentifier(callee) && callee.text === 'startEmulator' && argumentIndex === 0) {
    return { call: 'startEmulator()', shape: shapes.emulator };
  }
  return undefined;
}

/** Every option name in the markdown's code examples that the called function does not accept. */
export function unknownDocOptions(markdown: string, file: string, shapes: OptionShapes): DocOptionProblem[] {
  const problems: DocOptionProblem[] = [];
  for (const fence of markdown.matchAll(CODE_FENCE)) {
    const code = fence[2]!;
    const firstLine = markdown.slice(0, fence.index).split('\n').length + 1;
    const source = ts.createSourceFile('example.ts', code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const report = (call: string, option: string, position: number): void => {
      problems.push({
        file,
        line: firstLine + source.getLineAndCharacterOfPosition(position).line,
        call,
        option,
      });
    };
    const checkLiteral = (
      literal: ts.ObjectLiteralExpression,
      call: string,
      shape: OptionShape,
      path: string,
    ) => {
      for (const property of literal.properties) {
        if (ts.isSpreadAssignment(property) || property.name === undefined) continue;
        const name =
          ts.isIdentifier(property.name) || ts.isStringLiteral(property.name) ? property.name.text : '';
        if (name === '') continue;
        if (!shape.names.has(name)) {
          report(call, `${path}${name}`, property.getStart(source));
          continue;
        }
        const inner = shape.nested.get(name);
        if (inner !== undefined && ts.isPropertyAssignment(property)) {
          const value = property.initializer;
          if (ts.isObjectLiteralExpression(value)) checkLiteral(value, call, inner, `${path}${name}.`);
        }
      }
      for (const name of commentedOptionNames(literal, source)) {
        if (!shape.names.has(name)) report(call, `${path}${name}`, literal.getStart(source));
      }
    };
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
        (node.arguments ?? []).forEach((argument, index) => {
          const target = shapeForCall(node, index, shapes);
          if (target !== undefined && ts.isObjectLiteralExpression(argument)) {
            checkLiteral(argument, target.call, target.shape, '');
          }
        });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  // Prose such as "the `trustedCa` option (library)" names an option too.
  for (const match of markdown.matchAll(/`([A-Za-z_$][\w$]*)` option\b/g)) {
    const name = match[1]!;
    const known = [shapes.client, shapes.call, shapes.emulator].some((shape) => shape.names.has(name));
    if (!known) {
      problems.push({
        file,
        line: markdown.slice(0, match.index).split('\n').length,
        call: 'prose',
        option: name,
      });
    }
  }
  return problems;
}
