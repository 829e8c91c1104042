#!/usr/bin/env python3
"""Lists C++/CUDA functions longer than a limit (default 150 lines), signature to closing brace.

Usage: scripts/function-lengths.py [--max N] [--top K] DIR...
Exit status 1 when a function exceeds the limit. A plain lexer, not a compiler: comments, string
and character literals are blanked, then braces are matched; a block whose header ends in a
parameter list (optionally followed by const/noexcept/override/-> type/initializer list) is a
function; namespaces, classes, structs, enums and blocks inside a function are not counted
separately (a lambda counts towards the function that holds it).
"""
import argparse
import pathlib
import re
import sys

SCOPE = re.compile(r'\b(namespace|class|struct|union|enum)\b[^()]*$|extern\s+"C"\s*$')
CONTROL = re.compile(r'\b(if|for|while|switch|catch|do|else|try)\s*(\(|$)')


def blank_literals(text):
    """Comments, strings and char literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i)); i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j])); i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if m:
                end = text.find(')' + m.group(1) + '"', i)
                j = n if end < 0 else end + len(m.group(1)) + 2
                out.append(re.sub(r'[^\n]', ' ', text[i:j])); i = j
            else:
                out.append(c); i += 1
        elif c in '"\'':
            if c == "'" and i > 0 and (text[i - 1].isalnum()):  # digit separator 1'000
                out.append(' '); i += 1; continue
            j = i + 1
            while j < n and text[j] != c and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            out.append(c + ' ' * (min(j, n) - i - 1) + (c if j < n else '')); i = j + 1
        else:
            out.append(c); i += 1
    return ''.join(out)


def functions(path):
    text = blank_literals(path.read_text(errors='replace'))
    text = re.sub(r'^\s*#.*$', '', text, flags=re.M)  # preprocessor lines
    stack = []  # (kind, start_line, name)
    header_start, header = 0, []
    line = 1
    found = []
    for ch in text:
        if ch == '{':
            h = ' '.join(''.join(header).split())
            in_func = any(k == 'func' for k, _, _ in stack)
            if in_func:
                kind = 'inner'
            elif SCOPE.search(h):
                kind = 'scope'
            elif ')' in h and not CONTROL.search(h) and not h.rstrip().endswith('='):
                kind = 'func'
            else:
                kind = 'other'
            name = ''
            if kind == 'func':
                m = re.search(r'([~\w:]+)\s*\(', h)
                name = m.group(1) if m else h[:60]
            stack.append((kind, header_start, name))
            header, header_start = [], line
        elif ch == '}':
            if stack:
                kind, start, name = stack.pop()
                if kind == 'func':
                    found.append((line - start + 1, name, start))
            header, header_start = [], line
        elif ch == ';':
            header, header_start = [], line
        else:
            if not ''.join(header).strip() and not ch.isspace():
                header_start = line
            header.append(ch)
        if ch == '\n':
            line += 1
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--max', type=int, default=150)
    ap.add_argument('--top', type=int, default=0, help='also print the K longest functions')
    ap.add_argument('dirs', nargs='+')
    a = ap.parse_args()
    rows = []
    for d in a.dirs:
        for p in sorted(pathlib.Path(d).rglob('*')):
            if p.suffix in ('.cpp', '.cc', '.cu', '.h', '.hpp', '.cuh') and p.is_file():
                rows += [(n, name, f'{p}:{start}') for n, name, start in functions(p)]
    rows.sort(reverse=True)
    for n, name, where in rows[:a.top]:
        print(f'{n:5d}  {name}  {where}')
    over = [r for r in rows if r[0] > a.max]
    for n, name, where in over:
        print(f'{where}: function {name} is {n} lines (limit {a.max})', file=sys.stderr)
    return 1 if over else 0


if __name__ == '__main__':
    sys.exit(main())
