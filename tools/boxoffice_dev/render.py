"""Configuration text: @KEY@ templates (conf/) and the boxoffice.conf INI
file with settings overridden, and --set section.key=value arguments."""

import os
import re

from .errors import StackError


def render_text(text, mapping, name="template"):
    """Substitute @KEY@ placeholders; every upper-case placeholder must be known."""
    for key, value in mapping.items():
        text = text.replace("@%s@" % key, str(value))
    left = sorted(set(re.findall(r"@[A-Z][A-Z0-9_]*@", text)))
    if left:
        raise StackError("%s: unknown placeholders %s" % (name, ", ".join(left)))
    return text


def render_file(src, dst, mapping, mode=0o644):
    with open(src) as f:
        text = render_text(f.read(), mapping, name=src)
    tmp = dst + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, dst)
    return dst


def render_ini(template_text, values):
    """Render boxoffice.conf: keep every line and comment of the template,
    replace `key = value` lines for the (section, key) pairs in `values`.

    A value may be a list (the key repeated, e.g. several replica_dsn), or
    None (the key removed). Keys absent from the template are appended to
    their section (or to a new section at the end).
    """
    values = dict(values)
    out, section, done = [], None, set()

    def flush_missing(sec):
        for (s, k), v in list(values.items()):
            if s == sec and (s, k) not in done:
                done.add((s, k))
                for item in ([] if v is None else v if isinstance(v, list) else [v]):
                    out.append("%s = %s" % (k, item))

    for line in template_text.splitlines():
        m = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if m:
            if section is not None:
                flush_missing(section)
            section = m.group(1).strip()
            out.append(line)
            continue
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*=", line)
        if m and section is not None and (section, m.group(1)) in values:
            key = m.group(1)
            if (section, key) in done:
                continue            # later repeats of an overridden key
            done.add((section, key))
            v = values[(section, key)]
            for item in ([] if v is None else v if isinstance(v, list) else [v]):
                out.append("%s = %s" % (key, item))
            continue
        out.append(line)
    if section is not None:
        flush_missing(section)
    rest = sorted({s for (s, k) in values if (s, k) not in done})
    for sec in rest:
        out.append("")
        out.append("[%s]" % sec)
        flush_missing(sec)
    return "\n".join(out) + "\n"


def parse_overrides(items):
    """['queue.max_active=5', ...] -> {('queue','max_active'): '5'}"""
    res = {}
    for item in items or ():
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise StackError("override %r: expected section.key=value" % item)
        lhs, value = item.split("=", 1)
        sec, key = lhs.split(".", 1)
        res[(sec.strip(), key.strip())] = value.strip()
    return res

