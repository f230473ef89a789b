# cosmos3_json.awk: flatten one JSON document into "path<TAB>type<TAB>value" lines (POSIX
# awk, runs under busybox). Used by cosmos3_standin.sh to read a sample file the way
# upstream's pydantic models see it: objects print "path<TAB>object<TAB>", leaves print
# their type (string, number, bool, null) and raw text (string escapes kept as written),
# array items are "path[i]", the document itself is "@". A syntax error prints "ERROR<TAB><what>" and exits 3.

BEGIN { RS = "\001" }

{
    s = $0; n = length(s); i = 1
    parse_value("")
    skip_ws()
    if (i <= n) fail("extra data after the document")
}

function fail(msg) { print "ERROR\t" msg " at char " i; exit 3 }

function skip_ws() { while (i <= n && index(" \t\r\n", substr(s, i, 1))) i++ }

function parse_value(path,    c, v) {
    skip_ws()
    c = substr(s, i, 1)
    if (c == "{") parse_object(path)
    else if (c == "[") parse_array(path)
    else if (c == "\"") { v = parse_string(); print (path == "" ? "@" : path) "\tstring\t" v }
    else if (c ~ /[-0-9]/) { v = parse_number(); print (path == "" ? "@" : path) "\tnumber\t" v }
    else if (substr(s, i, 4) == "true") { i += 4; print (path == "" ? "@" : path) "\tbool\ttrue" }
    else if (substr(s, i, 5) == "false") { i += 5; print (path == "" ? "@" : path) "\tbool\tfalse" }
    else if (substr(s, i, 4) == "null") { i += 4; print (path == "" ? "@" : path) "\tnull\t" }
    else fail("expecting value")
}

function parse_object(path,    key, c) {
    i++
    print (path == "" ? "@" : path) "\tobject\t"
    skip_ws()
    if (substr(s, i, 1) == "}") { i++; return }
    while (1) {
        skip_ws()
        if (substr(s, i, 1) != "\"") fail("expecting property name enclosed in double quotes")
        key = parse_string()
        skip_ws()
        if (substr(s, i, 1) != ":") fail("expecting ':' delimiter")
        i++
        parse_value(path == "" ? key : path "." key)
        skip_ws()
        c = substr(s, i, 1)
        if (c == ",") { i++; continue }
        if (c == "}") { i++; return }
        fail("expecting ',' delimiter")
    }
}

function parse_array(path,    k, c) {
    i++
    print (path == "" ? "@" : path) "\tarray\t"
    skip_ws()
    if (substr(s, i, 1) == "]") { i++; return }
    k = 0
    while (1) {
        parse_value(path "[" k "]")
        k++
        skip_ws()
        c = substr(s, i, 1)
        if (c == ",") { i++; continue }
        if (c == "]") { i++; return }
        fail("expecting ',' delimiter")
    }
}

function parse_string(    out, c) {
    i++
    out = ""
    while (i <= n) {
        c = substr(s, i, 1)
        if (c == "\\") { out = out substr(s, i, 2); i += 2; continue }
        if (c == "\"") { i++; return out }
        out = out c
        i++
    }
    fail("unterminated string")
}

function parse_number(    start) {
    start = i
    while (i <= n && substr(s, i, 1) ~ /[-+0-9.eE]/) i++
    return substr(s, start, i - start)
}
