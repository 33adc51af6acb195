#!/usr/bin/python3
"""Generates the C++ codec of the Kafka messages from net/protocol/schema/*.schema.

Usage: generate.py OUTPUT_DIR SCHEMA_FILE...

For each schema file `name.schema` it writes OUTPUT_DIR/name.h and OUTPUT_DIR/name.cc,
and it writes OUTPUT_DIR/messages.h, which includes them all and maps API keys to types,
and OUTPUT_DIR/schema_facts.h, the schema as data for the conformance test.
The schema format is described in net/protocol/README.md. Python standard library only:
the build runs this script with /usr/bin/python3.

A file is only rewritten when its content changes, so that an edit to one schema does
not rebuild every translation unit.
"""

import os
import re
import sys

OPEN_END = 0x7FFF  # The largest int16: an open version range "N+" ends here.

PRIMITIVES = {
    # schema type: (C++ type, reader call, writer call, minimum encoded bytes)
    "int8": ("std::int8_t", "read_int8()", "write_int8", 1),
    "int16": ("std::int16_t", "read_int16()", "write_int16", 2),
    "int32": ("std::int32_t", "read_int32()", "write_int32", 4),
    "int64": ("std::int64_t", "read_int64()", "write_int64", 8),
    "uint16": ("std::uint16_t", "read_uint16()", "write_uint16", 2),
    "uint32": ("std::uint32_t", "read_uint32()", "write_uint32", 4),
    "varint": ("std::int32_t", "read_varint()", "write_varint", 1),
    "varlong": ("std::int64_t", "read_varlong()", "write_varlong", 1),
    "float64": ("double", "read_float64()", "write_float64", 8),
    "bool": ("bool", "read_bool()", "write_bool", 1),
    "uuid": ("uuid", "read_uuid()", "write_uuid", 16),
}
# Variable-length types: a length or null marker, then bytes.
LENGTH_PREFIXED = {"string", "bytes", "records"}

INT_LIMITS = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "varint": (-(2**31), 2**31 - 1),
    "varlong": (-(2**63), 2**63 - 1),
}


class SchemaError(Exception):
    pass


# ---------------------------------------------------------------------------------------
# Schema model and parser


class VersionRange:
    """An inclusive range of versions; `none` is the empty range."""

    def __init__(self, low, high):
        self.low = low
        self.high = high

    @staticmethod
    def parse(text, where):
        if text == "none":
            return VersionRange(None, None)
        match = re.fullmatch(r"(\d+)(\+|-(\d+))?", text)
        if not match:
            raise SchemaError(f"{where}: bad version range '{text}'")
        low = int(match.group(1))
        if match.group(2) == "+":
            high = OPEN_END
        elif match.group(3) is not None:
            high = int(match.group(3))
        else:
            high = low
        if high < low:
            raise SchemaError(f"{where}: empty version range '{text}'")
        return VersionRange(low, high)

    def empty(self):
        return self.low is None

    def contains(self, version):
        return not self.empty() and self.low <= version <= self.high

    def intersect(self, other):
        if self.empty() or other.empty():
            return VersionRange(None, None)
        low, high = max(self.low, other.low), min(self.high, other.high)
        return VersionRange(low, high) if low <= high else VersionRange(None, None)

    def covers(self, other):
        """True when every version of `other` is in this range."""
        return other.empty() or (not self.empty() and self.low <= other.low and
                                 other.high <= self.high)

    def __eq__(self, other):
        return self.low == other.low and self.high == other.high

    def __str__(self):
        if self.empty():
            return "none"
        if self.high == OPEN_END:
            return f"{self.low}+"
        if self.high == self.low:
            return f"{self.low}"
        return f"{self.low}-{self.high}"

    def condition(self, valid, variable="version"):
        """A C++ condition true for the versions of `valid` that are in this range."""
        inside = self.intersect(valid)
        if inside.empty():
            return "false"
        parts = []
        if inside.low > valid.low:
            parts.append(f"{variable} >= {inside.low}")
        if inside.high < valid.high:
            parts.append(f"{variable} <= {inside.high}")
        return " && ".join(parts) if parts else "true"


class Field:
    def __init__(self, name, type_name, versions, where):
        self.name = name
        self.type_name = type_name
        self.versions = versions
        self.nullable = VersionRange(None, None)
        self.tag = None
        self.tagged = VersionRange(None, None)
        self.default = None  # The schema text, or None for the type's implicit default.
        self.flexible_override_none = False
        self.fields = []  # Fields of the struct, when the type names one.
        self.struct_name = None
        self.where = where

    @property
    def is_array(self):
        return self.type_name.startswith("[]")

    @property
    def element_type(self):
        return self.type_name[2:] if self.is_array else self.type_name

    @property
    def is_struct(self):
        element = self.element_type
        return element not in PRIMITIVES and element not in LENGTH_PREFIXED

    @property
    def cpp_name(self):
        return snake_case(self.name)


class Message:
    def __init__(self, name, kind, api_key, valid, flexible, source):
        self.name = name
        self.kind = kind
        self.api_key = api_key
        self.valid = valid
        self.flexible = flexible
        self.fields = []
        self.source = source


def snake_case(name):
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return text.lower()


def parse_schema(path, display_path):
    messages = []
    # The stack of (indent, field list) that a field line at a given indent appends to.
    stack = []
    with open(path, encoding="utf-8") as schema_file:
        lines = schema_file.read().split("\n")
    for number, raw in enumerate(lines, start=1):
        where = f"{display_path}:{number}"
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if "\t" in line:
            raise SchemaError(f"{where}: tabs are not allowed, indent with spaces")
        indent = len(line) - len(line.lstrip(" "))
        words = line.split()
        if indent == 0:
            if words[0] != "message":
                raise SchemaError(f"{where}: expected 'message'")
            messages.append(parse_message_line(words, where, display_path))
            stack = [(0, messages[-1].fields)]
            continue
        if not messages:
            raise SchemaError(f"{where}: field outside a message")
        if indent % 2 != 0:
            raise SchemaError(f"{where}: indent by two spaces")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not stack or indent != stack[-1][0] + 2:
            raise SchemaError(f"{where}: unexpected indentation")
        field = parse_field_line(words, where)
        parent_fields = stack[-1][1]
        parent_fields.append(field)
        if field.is_struct:
            field.struct_name = field.element_type
        stack.append((indent, field.fields))
    for message in messages:
        check_message(message)
    return messages


def parse_attributes(words, where, allowed):
    attributes = {}
    for word in words:
        if "=" not in word:
            raise SchemaError(f"{where}: expected key=value, found '{word}'")
        key, value = word.split("=", 1)
        if key not in allowed:
            raise SchemaError(f"{where}: unknown attribute '{key}'")
        if key in attributes:
            raise SchemaError(f"{where}: attribute '{key}' given twice")
        attributes[key] = value
    return attributes


def parse_message_line(words, where, source):
    if len(words) < 3:
        raise SchemaError(f"{where}: expected 'message NAME KIND ...'")
    name, kind = words[1], words[2]
    # A `data` message is a versioned structure that travels inside other bytes (a
    # JoinGroup protocol's metadata, a record of __consumer_offsets): no API key, no
    # header, its version known from the context. It encodes like a request.
    if kind not in ("request", "response", "header", "data"):
        raise SchemaError(f"{where}: kind must be request, response, header or data")
    attributes = parse_attributes(words[3:], where, {"key", "valid", "flexible"})
    if "valid" not in attributes or "flexible" not in attributes:
        raise SchemaError(f"{where}: 'valid' and 'flexible' are required")
    api_key = None
    if kind in ("request", "response"):
        if "key" not in attributes:
            raise SchemaError(f"{where}: requests and responses need 'key'")
        api_key = int(attributes["key"])
    elif "key" in attributes:
        raise SchemaError(f"{where}: only requests and responses have a 'key'")
    valid = VersionRange.parse(attributes["valid"], where)
    flexible = VersionRange.parse(attributes["flexible"], where)
    if not flexible.empty() and flexible.high != OPEN_END:
        raise SchemaError(f"{where}: flexible versions must be open ended ('N+')")
    return Message(name, kind, api_key, valid, flexible, source)


def parse_field_line(words, where):
    if len(words) < 3:
        raise SchemaError(f"{where}: expected 'NAME TYPE VERSIONS ...'")
    field = Field(words[0], words[1], VersionRange.parse(words[2], where), where)
    attributes = parse_attributes(words[3:], where,
                                  {"nullable", "tag", "tagged", "default", "flexible"})
    if "nullable" in attributes:
        field.nullable = VersionRange.parse(attributes["nullable"], where)
    if "tag" in attributes:
        field.tag = int(attributes["tag"])
    if "tagged" in attributes:
        field.tagged = VersionRange.parse(attributes["tagged"], where)
    if "default" in attributes:
        field.default = attributes["default"]
    if "flexible" in attributes:
        if attributes["flexible"] != "none":
            raise SchemaError(f"{where}: a field may only say flexible=none")
        field.flexible_override_none = True
    return field


def check_message(message):
    struct_names = set()

    def check(fields):
        tags = set()
        names = set()
        for field in fields:
            where = field.where
            if field.name in names:
                raise SchemaError(f"{where}: duplicate field '{field.name}'")
            names.add(field.name)
            if field.versions.empty():
                raise SchemaError(f"{where}: a field needs versions")
            if (field.tag is None) != field.tagged.empty():
                raise SchemaError(f"{where}: 'tag' and 'tagged' go together")
            if field.tag is not None:
                if field.tag in tags:
                    raise SchemaError(f"{where}: duplicate tag {field.tag}")
                tags.add(field.tag)
                # Kafka allows a field to be tagged in some versions only; none of ours
                # needs that, so the generator keeps to the simple case.
                if field.tagged != field.versions:
                    raise SchemaError(f"{where}: tagged versions must equal versions")
                if not message.flexible.covers(field.tagged.intersect(message.valid)):
                    raise SchemaError(f"{where}: tagged fields need flexible versions")
            nullable_capable = field.is_array or field.element_type in LENGTH_PREFIXED
            if not field.nullable.empty() and not nullable_capable:
                raise SchemaError(f"{where}: only strings, bytes, records and arrays "
                                  "can be nullable")
            if field.is_struct:
                if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", field.struct_name):
                    raise SchemaError(f"{where}: unknown type '{field.type_name}'")
                if not field.fields:
                    raise SchemaError(f"{where}: struct '{field.struct_name}' has no fields")
                if field.struct_name in struct_names:
                    raise SchemaError(f"{where}: struct '{field.struct_name}' defined twice")
                struct_names.add(field.struct_name)
                if field.default not in (None, "null"):
                    raise SchemaError(f"{where}: structs have no default value")
                check(field.fields)
            elif field.fields:
                raise SchemaError(f"{where}: only struct fields have nested fields")
            if field.default is not None and not field.is_array and not field.is_struct:
                cpp_default(field)  # Validates the value.

    check(message.fields)


# ---------------------------------------------------------------------------------------
# C++ types and defaults


def element_cpp_type(field):
    element = field.element_type
    if field.is_struct:
        return field.struct_name
    if element == "string":
        return "std::string_view"
    if element in ("bytes", "records"):
        return "bytes_view"
    return PRIMITIVES[element][0]


def cpp_type(field):
    base = element_cpp_type(field)
    if field.is_array:
        base = f"std::vector<{base}>"
    if not field.nullable.empty():
        return f"std::optional<{base}>"
    return base


def default_is_null(field):
    """Whether the default value is null; only nullable fields can default to null."""
    if field.nullable.empty():
        return False
    if field.default == "null":
        return True
    # Records default to null (no batches), as in Kafka's own generated code.
    return field.element_type == "records" and not field.is_array and field.default is None


def cpp_default(field):
    """The C++ initializer of a field, '' for value initialization."""
    where = field.where
    if field.is_array or field.is_struct:
        if field.default not in (None, "null"):
            raise SchemaError(f"{where}: arrays only default to empty or null")
        if field.default == "null" and field.nullable.empty():
            raise SchemaError(f"{where}: only nullable fields default to null")
        if not field.nullable.empty() and not default_is_null(field):
            return "std::in_place"
        return ""
    element = field.element_type
    if field.default == "null":
        if field.nullable.empty():
            raise SchemaError(f"{where}: only nullable fields default to null")
        return ""
    if element in LENGTH_PREFIXED:
        text = field.default or ""
        if text.startswith('"') and text.endswith('"') and len(text) >= 2:
            text = text[1:-1]
        if element != "string" and text:
            raise SchemaError(f"{where}: bytes and records only default to empty or null")
        if default_is_null(field):
            return ""
        if field.nullable.empty() and not text:
            return ""
        if element != "string":
            return "std::in_place"  # Empty, not null.
        if '"' in text or "\\" in text:
            raise SchemaError(f"{where}: quotes and backslashes in a default")
        return f'std::in_place, "{text}"' if not field.nullable.empty() else f'"{text}"'
    if field.default is None:
        return ""
    if element == "bool":
        if field.default not in ("true", "false"):
            raise SchemaError(f"{where}: a bool defaults to true or false")
        return field.default
    if element == "float64":
        return repr(float(field.default))
    if element == "uuid":
        raise SchemaError(f"{where}: uuid fields take no default")
    try:
        value = int(field.default, 0)
    except ValueError:
        raise SchemaError(f"{where}: bad integer default '{field.default}'") from None
    low, high = INT_LIMITS[element]
    if not low <= value <= high:
        raise SchemaError(f"{where}: default {value} out of range for {element}")
    if value == low and low < 0:
        # The literal of the smallest value does not exist in C++; write it as an expression.
        return f"{value + 1} - 1"
    return str(value)


def default_value_expression(field):
    """A C++ expression equal to the field's default value."""
    initializer = cpp_default(field)
    return f"{cpp_type(field)}{{{initializer}}}"


# ---------------------------------------------------------------------------------------
# Minimum encoded sizes, used to bound array counts read from the wire


def element_min_bytes(field, version, flexible, structs):
    element = field.element_type
    if field.is_struct:
        return struct_min_bytes(structs[field.struct_name], version, flexible, structs)
    if element in LENGTH_PREFIXED:
        if flexible and not field.flexible_override_none:
            return 1
        return 2 if element == "string" else 4
    return PRIMITIVES[element][3]


def field_min_bytes(field, version, flexible, structs):
    if not field.versions.contains(version) or field.tagged.contains(version):
        return 0
    if field.is_array:
        return 1 if flexible else 4
    return element_min_bytes(field, version, flexible, structs)


def struct_min_bytes(fields, version, flexible, structs):
    total = sum(field_min_bytes(f, version, flexible, structs) for f in fields)
    return total + (1 if flexible else 0)  # The count of tagged fields.


# ---------------------------------------------------------------------------------------
# Code generation


class Writer:
    def __init__(self):
        self.lines = []
        self.depth = 0

    def line(self, text=""):
        self.lines.append(("  " * self.depth + text) if text else "")

    def open(self, text):
        self.line(text)
        self.depth += 1

    def close(self, text="}"):
        self.depth -= 1
        self.line(text)

    def text(self):
        return "\n".join(self.lines) + "\n"


class StructGen:
    """Generates one struct: the message itself or one of its nested structs."""

    def __init__(self, message, name, fields, structs, top_level):
        self.message = message
        self.name = name
        self.fields = fields
        self.structs = structs
        self.top_level = top_level

    def flexible_for(self, field):
        return "false" if field.flexible_override_none else "flexible"

    # --- declaration

    def declare(self, out, nested_order):
        message = self.message
        if self.top_level:
            what = message.kind
            key = f", API key {message.api_key}" if message.api_key is not None else ""
            out.line(f"// {message.name}: {what}{key}, versions {message.valid}, "
                     f"flexible versions {message.flexible}.")
        out.open(f"struct {self.name} {{")
        if self.top_level:
            if message.api_key is not None:
                out.line(f"static constexpr std::int16_t api_key = {message.api_key};")
            out.line(f"static constexpr std::int16_t min_version = {message.valid.low};")
            out.line(f"static constexpr std::int16_t max_version = {message.valid.high};")
            first_flexible = -1 if message.flexible.empty() else message.flexible.low
            out.line("// -1 when no version is flexible.")
            out.line(f"static constexpr std::int16_t first_flexible_version = {first_flexible};")
            out.line(f'static constexpr std::string_view name = "{message.name}";')
            out.line()
            for nested in nested_order:
                nested.declare(out, [])
                out.line()
        for field in self.fields:
            out.line(f"// {describe(field)}")
            initializer = cpp_default(field)
            initializer = f"{{{initializer}}}" if initializer else "{}"
            out.line(f"{cpp_type(field)} {field.cpp_name}{initializer};")
        if self.fields:
            out.line()
        if self.top_level:
            out.line("// Reads the message at `version`, which must be within "
                     "[min_version, max_version].")
            out.line("// On malformed input `in` holds the error; the message is then "
                     "partly filled.")
        out.line("void decode(reader& in, std::int16_t version);")
        if self.top_level:
            out.line("// Appends the message at `version`. Fields that `version` lacks are "
                     "not written,")
            out.line("// whatever their value. A value the version cannot carry (a null "
                     "where it is not")
            out.line("// nullable) fails `out`.")
        out.line("void encode(writer& out, std::int16_t version) const;")
        if not self.top_level:
            out.line("// The fewest bytes one element can take at `version`: bounds array "
                     "counts read")
            out.line("// from the wire.")
            out.line("static std::size_t min_encoded_bytes(std::int16_t version);")
        out.line()
        out.line("// Calls visitor(field_info, member) for every field, in schema order.")
        out.line("template <typename Self, typename Visitor>")
        out.open("static void visit_fields(Self& self, Visitor&& visitor) {")
        for field in self.fields:
            nullable = field.nullable.intersect(field.versions)
            nullable_low = -1 if nullable.empty() else nullable.low
            nullable_high = -1 if nullable.empty() else nullable.high
            tag = -1 if field.tag is None else field.tag
            out.line(f'visitor(field_info{{"{field.name}", {field.versions.low}, '
                     f"{field.versions.high}, {nullable_low}, {nullable_high}, {tag}}}, "
                     f"self.{field.cpp_name});")
        if not self.fields:
            out.line("(void)self;")
            out.line("(void)visitor;")
        out.close()
        out.line()
        out.line(f"friend bool operator==(const {self.name}& a, const {self.name}& b);")
        out.close("};")

    # --- decode

    def qualified(self):
        if self.top_level:
            return self.name
        return f"{self.message.name}::{self.name}"

    def define(self, out):
        message = self.message
        qualified = self.qualified()
        flexible_condition = message.flexible.condition(message.valid)

        out.open(f"void {qualified}::decode(reader& in, std::int16_t version) {{")
        if self.top_level:
            out.open("if (version < min_version || version > max_version) {")
            out.line(f'in.fail("{message.name}: unsupported version");')
            out.line("return;")
            out.close()
        out.line(f"*this = {self.name}{{}};")
        out.line(f"const bool flexible = {flexible_condition};")
        out.line("(void)flexible;")
        out.line("(void)version;")
        for field in self.fields:
            if field.tag is not None:
                continue
            condition = field.versions.condition(message.valid)
            if condition == "false":
                continue
            self.emit_guarded(out, condition, lambda: self.emit_decode(out, field, "in"))
        out.line("if (!in.ok()) return;")
        self.emit_decode_tagged(out)
        out.close()
        out.line()

        out.open(f"void {qualified}::encode(writer& out, std::int16_t version) const {{")
        if self.top_level:
            out.open("if (version < min_version || version > max_version) {")
            out.line(f'out.fail("{message.name}: unsupported version");')
            out.line("return;")
            out.close()
        out.line(f"const bool flexible = {flexible_condition};")
        out.line("(void)flexible;")
        out.line("(void)version;")
        for field in self.fields:
            if field.tag is not None:
                continue
            condition = field.versions.condition(message.valid)
            if condition == "false":
                continue
            self.emit_guarded(out, condition, lambda: self.emit_encode(out, field))
        self.emit_encode_tagged(out)
        out.close()
        out.line()

        if not self.top_level:
            self.define_min_bytes(out)

        out.open(f"bool operator==(const {qualified}& a, const {qualified}& b) {{")
        if not self.fields:
            out.line("(void)a;")
            out.line("(void)b;")
            out.line("return true;")
        else:
            comparisons = [f"field_equal(a.{f.cpp_name}, b.{f.cpp_name})" for f in self.fields]
            out.line("return " + " &&\n         ".join(comparisons) + ";")
        out.close()
        out.line()

    def define_min_bytes(self, out):
        message = self.message
        # The value depends on the version only through fields and flexibility, so write
        # it as a chain of version thresholds, newest first.
        values = []
        for version in range(message.valid.low, message.valid.high + 1):
            flexible = message.flexible.contains(version)
            values.append((version, struct_min_bytes(self.fields, version, flexible,
                                                      self.structs)))
        runs = []
        for version, size in values:
            if runs and runs[-1][1] == size:
                continue
            runs.append((version, size))
        out.open(f"std::size_t {self.qualified()}::min_encoded_bytes(std::int16_t version) {{")
        if len(runs) == 1:
            out.line("(void)version;")
        for version, size in reversed(runs[1:]):
            out.line(f"if (version >= {version}) return {size};")
        out.line(f"return {runs[0][1]};")
        out.close()
        out.line()

    def emit_guarded(self, out, condition, body):
        if condition == "true":
            body()
        else:
            out.open(f"if ({condition}) {{")
            body()
            out.close()

    def nullable_condition(self, field):
        """When the field is nullable, among the versions in which it is present."""
        present = field.versions.intersect(self.message.valid)
        return field.nullable.intersect(present).condition(present)

    def emit_decode(self, out, field, reader_name):
        member = field.cpp_name
        flexible = self.flexible_for(field)
        nullable = self.nullable_condition(field)
        is_optional = not field.nullable.empty()
        if field.is_array:
            self.emit_decode_array(out, field, reader_name, member, flexible, nullable,
                                   is_optional)
        elif field.is_struct:
            out.line(f"{member}.decode({reader_name}, version);")
        elif field.element_type in LENGTH_PREFIXED:
            kind = "string" if field.element_type == "string" else "bytes"
            if not is_optional:
                out.line(f"{member} = {reader_name}.read_{kind}({flexible});")
            elif nullable == "true":
                out.line(f"{member} = {reader_name}.read_nullable_{kind}({flexible});")
            else:
                out.open(f"if ({nullable}) {{")
                out.line(f"{member} = {reader_name}.read_nullable_{kind}({flexible});")
                out.close("} else {")
                out.depth += 1
                out.line(f"{member} = {reader_name}.read_{kind}({flexible});")
                out.close()
        else:
            out.line(f"{member} = {reader_name}.{PRIMITIVES[field.element_type][1]};")

    def element_min_expression(self, field, flexible):
        if field.is_struct:
            return f"{field.struct_name}::min_encoded_bytes(version)"
        element = field.element_type
        if element in LENGTH_PREFIXED:
            fixed = 2 if element == "string" else 4
            return f"{flexible} ? 1 : {fixed}" if flexible != "false" else str(fixed)
        return str(PRIMITIVES[element][3])

    def emit_decode_array(self, out, field, reader_name, member, flexible, nullable,
                          is_optional):
        minimum = self.element_min_expression(field, flexible)
        out.open("{")
        nullable_argument = "false" if not is_optional else nullable
        out.line(f"const std::int32_t count = {reader_name}.read_array_length({flexible}, "
                 f"{minimum}, {nullable_argument});")
        if is_optional:
            out.open("if (count < 0) {")
            out.line(f"{member}.reset();")
            out.close("} else {")
            out.depth += 1
            out.line(f"auto& items = {member}.emplace();")
        else:
            out.line(f"auto& items = {member};")
        out.line("items.reserve(reserve_hint(count));")
        out.open(f"for (std::int32_t i = 0; i < count && {reader_name}.ok(); ++i) {{")
        element = field.element_type
        if field.is_struct:
            out.line(f"items.emplace_back().decode({reader_name}, version);")
        elif element in LENGTH_PREFIXED:
            kind = "string" if element == "string" else "bytes"
            out.line(f"items.push_back({reader_name}.read_{kind}({flexible}));")
        else:
            out.line(f"items.push_back({reader_name}.{PRIMITIVES[element][1]});")
        out.close()
        if is_optional:
            out.close()
        out.close()

    def tagged_fields(self):
        return sorted((f for f in self.fields if f.tag is not None), key=lambda f: f.tag)

    def emit_decode_tagged(self, out):
        message = self.message
        tagged = self.tagged_fields()
        if message.flexible.intersect(message.valid).empty():
            return
        out.open("if (flexible) {")
        if not tagged:
            out.line("in.skip_tagged_fields();")
            out.close()
            return
        out.line("const std::uint32_t tag_count = in.read_tag_count();")
        out.open("for (std::uint32_t i = 0; i < tag_count && in.ok(); ++i) {")
        out.line("const std::uint32_t tag = in.read_uvarint();")
        out.line("reader field_in = in.read_tagged_field();")
        out.open("switch (tag) {")
        for field in tagged:
            out.open(f"case {field.tag}:")
            condition = field.tagged.condition(message.valid)
            self.emit_guarded(out, condition,
                              lambda field=field: self.emit_decode(out, field, "field_in"))
            out.line("break;")
            out.depth -= 1
        out.open("default:")
        out.line("break;  // An unknown tag: skipped, as the protocol asks.")
        out.depth -= 1
        out.close()
        out.line("in.take_failure(field_in);")
        out.close()
        out.close()

    # --- encode

    def emit_encode(self, out, field, value=None):
        member = value or field.cpp_name
        flexible = self.flexible_for(field)
        nullable = self.nullable_condition(field)
        is_optional = not field.nullable.empty()
        if field.is_array:
            self.emit_encode_array(out, field, member, flexible, nullable, is_optional)
        elif field.is_struct:
            out.line(f"{member}.encode(out, version);")
        elif field.element_type in LENGTH_PREFIXED:
            kind = "string" if field.element_type == "string" else "bytes"
            if not is_optional:
                out.line(f"out.write_{kind}({member}, {flexible});")
            elif nullable == "true":
                out.line(f"out.write_nullable_{kind}({member}, {flexible});")
            elif nullable == "false":
                out.line(f'out.write_{kind}({member}, {flexible}, "{field.name}");')
            else:
                out.open(f"if ({nullable}) {{")
                out.line(f"out.write_nullable_{kind}({member}, {flexible});")
                out.close("} else {")
                out.depth += 1
                out.line(f'out.write_{kind}({member}, {flexible}, "{field.name}");')
                out.close()
        else:
            out.line(f"out.{PRIMITIVES[field.element_type][2]}({member});")

    def emit_encode_array(self, out, field, member, flexible, nullable, is_optional):
        items = member
        if is_optional:
            not_nullable = (f'out.fail("{field.name}: null in a version where it is not '
                            'nullable");')
            out.open(f"if (!{member}) {{")
            if nullable == "true":
                out.line(f"out.write_null_array({flexible});")
            elif nullable == "false":
                out.line(not_nullable)
            else:
                out.open(f"if ({nullable}) {{")
                out.line(f"out.write_null_array({flexible});")
                out.close("} else {")
                out.depth += 1
                out.line(not_nullable)
                out.close()
            out.close("} else {")
            out.depth += 1
            items = f"(*{member})"
        out.line(f"out.write_array_length({items}.size(), {flexible});")
        element = field.element_type
        if field.is_struct:
            out.line(f"for (const auto& item : {items}) item.encode(out, version);")
        elif element in LENGTH_PREFIXED:
            kind = "string" if element == "string" else "bytes"
            out.line(f"for (const auto& item : {items}) out.write_{kind}(item, {flexible});")
        else:
            out.line(f"for (const auto& item : {items}) "
                     f"out.{PRIMITIVES[element][2]}(item);")
        if is_optional:
            out.close()

    def emit_encode_tagged(self, out):
        message = self.message
        if message.flexible.intersect(message.valid).empty():
            return
        tagged = self.tagged_fields()
        out.open("if (flexible) {")
        if not tagged:
            out.line("out.write_uvarint(0);  // No tagged fields.")
            out.close()
            return
        # Only values other than the default travel, so count them first.
        for field in tagged:
            condition = field.tagged.condition(message.valid)
            prefix = "" if condition == "true" else f"({condition}) && "
            out.line(f"const bool write_{field.cpp_name} = {prefix}!field_equal("
                     f"{field.cpp_name}, {default_value_expression(field)});")
        count = " + ".join(f"std::uint32_t{{write_{f.cpp_name}}}" for f in tagged)
        out.line(f"out.write_uvarint({count});")
        for field in tagged:
            out.open(f"if (write_{field.cpp_name}) {{")
            out.line(f"out.write_uvarint({field.tag});")
            out.line("const std::size_t size_mark = out.begin_uvarint_size();")
            self.emit_encode(out, field)
            out.line("out.end_uvarint_size(size_mark);")
            out.close()
        out.close()


def describe(field):
    parts = [f"{field.name}: {field.type_name}, versions {field.versions}"]
    if not field.nullable.empty():
        parts.append(f"nullable {field.nullable}")
    if field.tag is not None:
        parts.append(f"tag {field.tag} in {field.tagged}")
    if field.default is not None:
        parts.append(f"default {field.default}")
    if field.flexible_override_none:
        parts.append("never compact")
    return ", ".join(parts) + "."


def nested_structs(fields):
    """The nested structs of a message, innermost first, so each is declared before use."""
    order = []
    for field in fields:
        if field.is_struct:
            order.extend(nested_structs(field.fields))
            order.append(field)
    return order


def generate_file(stem, messages):
    header = Writer()
    source = Writer()
    banner = (f"// Generated by tools/protocol/generate.py from "
              f"net/protocol/schema/{stem}.schema.\n"
              "// Do not edit: change the schema and rebuild.")
    header.line(banner)
    header.line("#pragma once")
    header.line()
    for include in ("<cstddef>", "<cstdint>", "<optional>", "<string_view>", "<vector>"):
        header.line(f"#include {include}")
    header.line()
    header.line('#include "net/protocol/field_types.h"')
    header.line('#include "net/protocol/reader.h"')
    header.line('#include "net/protocol/writer.h"')
    header.line()
    header.line("namespace sluice::protocol {")
    header.line()
    source.line(banner)
    source.line(f'#include "net/protocol/generated/{stem}.h"')
    source.line()
    source.line("namespace sluice::protocol {")
    source.line()
    for message in messages:
        nested = nested_structs(message.fields)
        structs = {f.struct_name: f.fields for f in nested}
        nested_gens = [StructGen(message, f.struct_name, f.fields, structs, False)
                       for f in nested]
        top = StructGen(message, message.name, message.fields, structs, True)
        top.declare(header, nested_gens)
        header.line()
        source.line(f"// {message.name}")
        source.line()
        for generator in nested_gens:
            generator.define(source)
        top.define(source)
    header.line("}  // namespace sluice::protocol")
    source.line("}  // namespace sluice::protocol")
    return header.text(), source.text()


def generate_index(all_messages, stems):
    out = Writer()
    out.line("// Generated by tools/protocol/generate.py from net/protocol/schema/*.schema.")
    out.line("// Do not edit: change the schema and rebuild.")
    out.line("//")
    out.line("// Every generated message, and the map from an API key to its request and "
             "response types.")
    out.line("#pragma once")
    out.line()
    out.line("#include <cstdint>")
    out.line("#include <type_traits>")
    out.line()
    for stem in stems:
        out.line(f'#include "net/protocol/generated/{stem}.h"')
    out.line()
    out.line("namespace sluice::protocol {")
    out.line()
    by_key = {}
    for message in all_messages:
        if message.api_key is not None:
            by_key.setdefault(message.api_key, {})[message.kind] = message.name
    for key, kinds in sorted(by_key.items()):
        if set(kinds) != {"request", "response"}:
            raise SchemaError(f"API key {key} needs both a request and a response")
    out.line("// The API keys that have generated messages, in increasing order.")
    keys = ", ".join(str(k) for k in sorted(by_key))
    out.line(f"inline constexpr std::int16_t generated_api_keys[] = {{{keys}}};")
    out.line()
    data_names = [m.name for m in all_messages if m.kind == "data"]
    out.line("// Calls visitor(std::type_identity<Data>{}) for every data message (those "
             "without an")
    out.line("// API key or header), in schema file order.")
    out.line("template <typename Visitor>")
    out.open("void visit_data_types(Visitor&& visitor) {")
    for name in data_names:
        out.line(f"visitor(std::type_identity<{name}>{{}});")
    if not data_names:
        out.line("(void)visitor;")
    out.close()
    out.line()
    for kind in ("request", "response"):
        out.line(f"// Calls visitor(std::type_identity<{kind.capitalize()}>{{}}) with the "
                 f"{kind} type of")
        out.line("// `key` and returns true, or returns false for a key without a message.")
        out.line("template <typename Visitor>")
        out.open(f"bool visit_{kind}_type(std::int16_t key, Visitor&& visitor) {{")
        out.open("switch (key) {")
        for key, kinds in sorted(by_key.items()):
            out.line(f"case {key}: visitor(std::type_identity<{kinds[kind]}>{{}}); "
                     "return true;")
        out.line("default: return false;")
        out.close()
        out.close()
        out.line()
    out.line("}  // namespace sluice::protocol")
    return out.text()


def generate_facts(all_messages):
    """The schema as data, so that a test can compare it with Kafka's own definitions."""
    out = Writer()
    out.line("// Generated by tools/protocol/generate.py from net/protocol/schema/*.schema.")
    out.line("// Do not edit: change the schema and rebuild.")
    out.line("//")
    out.line("// The facts of every schema as plain data, for the conformance test that "
             "checks them")
    out.line("// against Kafka's message definitions. Not used by the codec itself.")
    out.line("#pragma once")
    out.line()
    out.line("namespace sluice::protocol::schema_facts {")
    out.line()
    out.line("struct message_fact {")
    out.line("  const char* name;")
    out.line("  const char* kind;")
    out.line("  int api_key;  // -1 for headers and data messages")
    out.line("  const char* valid_versions;")
    out.line("  const char* flexible_versions;")
    out.line("};")
    out.line()
    out.line("// One row per field, depth first in schema order; `depth` 0 is a field of the "
             "message.")
    out.line("struct field_fact {")
    out.line("  const char* message;")
    out.line("  int depth;")
    out.line("  const char* name;")
    out.line("  const char* type;")
    out.line("  const char* versions;")
    out.line("  const char* nullable_versions;")
    out.line("  int tag;  // -1 for a regular field")
    out.line("  const char* tagged_versions;")
    out.line("  const char* default_value;  // nullptr for the type's implicit default")
    out.line("  bool never_flexible;")
    out.line("};")
    out.line()

    def quoted(text):
        return "nullptr" if text is None else '"' + text.replace('"', '\\"') + '"'

    out.open("inline constexpr message_fact messages[] = {")
    for message in all_messages:
        key = -1 if message.api_key is None else message.api_key
        out.line(f'{{"{message.name}", "{message.kind}", {key}, "{message.valid}", '
                 f'"{message.flexible}"}},')
    out.close("};")
    out.line()
    out.open("inline constexpr field_fact fields[] = {")

    def emit(message, fields, depth):
        for field in fields:
            tag = -1 if field.tag is None else field.tag
            out.line(f'{{"{message.name}", {depth}, "{field.name}", "{field.type_name}", '
                     f'"{field.versions}", "{field.nullable}", {tag}, "{field.tagged}", '
                     f'{quoted(field.default)}, '
                     f'{"true" if field.flexible_override_none else "false"}}},')
            emit(message, field.fields, depth + 1)

    for message in all_messages:
        emit(message, message.fields, 0)
    out.close("};")
    out.line()
    out.line("}  // namespace sluice::protocol::schema_facts")
    return out.text()


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as existing:
            if existing.read() == text:
                return
    except FileNotFoundError:
        pass
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as output:
        output.write(text)
    os.replace(temporary, path)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    output_dir = argv[1]
    schema_paths = sorted(argv[2:], key=os.path.basename)
    os.makedirs(output_dir, exist_ok=True)
    all_messages = []
    stems = []
    names = set()
    try:
        for path in schema_paths:
            stem = os.path.splitext(os.path.basename(path))[0]
            messages = parse_schema(path, f"net/protocol/schema/{stem}.schema")
            for message in messages:
                if message.name in names:
                    raise SchemaError(f"{path}: message {message.name} defined twice")
                names.add(message.name)
            header, source = generate_file(stem, messages)
            write_if_changed(os.path.join(output_dir, stem + ".h"), header)
            write_if_changed(os.path.join(output_dir, stem + ".cc"), source)
            all_messages.extend(messages)
            stems.append(stem)
        write_if_changed(os.path.join(output_dir, "messages.h"),
                         generate_index(all_messages, stems))
        write_if_changed(os.path.join(output_dir, "schema_facts.h"),
                         generate_facts(all_messages))
    except SchemaError as problem:
        sys.stderr.write(f"generate.py: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
