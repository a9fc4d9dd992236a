# Writes OUT, a C file defining web_assets[] (node/web_assets.h): the demo
# page's files, DEMO_FILES under DEMO_DIR (web/demo/), served as /demo/<path>,
# and the browser client's modules, LIB_FILES (web/src/*.js), served as
# /demo/lib/<name>, each with its bytes and content type. Built into the
# binary so that it, and the container image, serve the demo with no file
# beside them. Either list may be empty. Run with cmake -P.
set(code "/* Generated from web/demo/ and web/src/ by cmake/web_assets.cmake: do not edit. */\n")
string(APPEND code "#include \"web_assets.h\"\n\n")
set(table "")
set(i 0)

# The content type a browser needs for a file, by its name's ending.
function(content_type name out)
  string(TOLOWER "${name}" lower)
  if(lower MATCHES "\\.html?$")
    set(t "text/html; charset=utf-8")
  elseif(lower MATCHES "\\.m?js$")
    set(t "text/javascript; charset=utf-8")
  elseif(lower MATCHES "\\.css$")
    set(t "text/css; charset=utf-8")
  elseif(lower MATCHES "\\.(json|map)$")
    set(t "application/json; charset=utf-8")
  elseif(lower MATCHES "\\.svg$")
    set(t "image/svg+xml; charset=utf-8")
  elseif(lower MATCHES "\\.txt$")
    set(t "text/plain; charset=utf-8")
  elseif(lower MATCHES "\\.png$")
    set(t "image/png")
  elseif(lower MATCHES "\\.ico$")
    set(t "image/x-icon")
  else()
    set(t "application/octet-stream")
  endif()
  set(${out} "${t}" PARENT_SCOPE)
endfunction()

# Appends one file, served at url, to the generated code and the table.
macro(embed file url)
  content_type("${file}" type)
  file(READ "${file}" hex HEX)
  file(SIZE "${file}" size)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  # One NUL more: an empty file still makes a valid array.
  string(APPEND code "static const unsigned char asset_${i}[] = {${bytes}0x00};\n")
  string(APPEND table "    {\"${url}\", \"${type}\", asset_${i}, ${size}},\n")
  math(EXPR i "${i} + 1")
endmacro()

foreach(file ${DEMO_FILES})
  file(RELATIVE_PATH rel "${DEMO_DIR}" "${file}")
  embed("${file}" "/demo/${rel}")
endforeach()
foreach(file ${LIB_FILES})
  get_filename_component(name "${file}" NAME)
  embed("${file}" "/demo/lib/${name}")
endforeach()

string(APPEND code "\nconst struct web_asset web_assets[] = {\n${table}    {0, 0, 0, 0},\n};\n")
file(WRITE "${OUT}" "${code}")
