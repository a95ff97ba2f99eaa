# install.cmake: what `cmake --install` puts where (GNUInstallDirs), the RST plugins as
# packages (build/packages/NAME-VERSION.tqp, part of `all`) and the man page made from
# tqhost's own --help. Included by CMakeLists.txt after the tqhost target.
#
#   bin/tqhost
#   share/tqhost/{schemas,actions,web}      from the source tree (web/ when present)
#   share/tqhost/plugins                    README, lib/, then each RST plugin installed by
#                                           `tqhost plugin install` from its package
#   share/tqhost/packages/*.tqp             the packages themselves
#   share/doc/tqhost/                       README.md, docs/*.md, the example tqhost.yaml
#   share/man/man1/tqhost.1                 scripts/gen-manpage
#   share/bash-completion/completions/tqhost
set(TQ_SHARE ${CMAKE_INSTALL_DATADIR}/tqhost)

# ---- the RST plugins as packages --------------------------------------------------------------
set(TQ_BUNDLED_PLUGINS rst-ioc-lookup rst-noise-control rst-whois-api)
set(TQ_PACKAGES_DIR ${CMAKE_BINARY_DIR}/packages)
set(TQ_PACKAGE_FILES)
foreach(name ${TQ_BUNDLED_PLUGINS})
  set(dir ${CMAKE_SOURCE_DIR}/plugins/${name})
  file(STRINGS ${dir}/manifest.yaml vline REGEX "^version:")
  string(REGEX REPLACE "^version:[ \t]*\"?([^\" \t#]+).*" "\\1" version "${vline}")
  set(tqp ${TQ_PACKAGES_DIR}/${name}-${version}.tqp)
  file(GLOB_RECURSE deps CONFIGURE_DEPENDS ${dir}/* ${CMAKE_SOURCE_DIR}/plugins/lib/*)
  add_custom_command(OUTPUT ${tqp}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${TQ_PACKAGES_DIR}
    COMMAND ${CMAKE_COMMAND} -E env TQHOST_CONFIG=/dev/null
            $<TARGET_FILE:tqhost> plugin pack ${dir} -o ${tqp}
    DEPENDS tqhost ${deps}
    COMMENT "Packing plugin ${name} ${version}" VERBATIM)
  list(APPEND TQ_PACKAGE_FILES ${tqp})
endforeach()
add_custom_target(plugin_packages ALL DEPENDS ${TQ_PACKAGE_FILES})

# ---- the man page -----------------------------------------------------------------------------
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/tqhost.1
  COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/gen-manpage $<TARGET_FILE:tqhost>
          ${CMAKE_BINARY_DIR}/tqhost.1
  DEPENDS tqhost ${CMAKE_SOURCE_DIR}/scripts/gen-manpage
  COMMENT "Writing the man page tqhost.1 from tqhost --help" VERBATIM)
add_custom_target(tqhost_manpage ALL DEPENDS ${CMAKE_BINARY_DIR}/tqhost.1)

# ---- install ----------------------------------------------------------------------------------
install(TARGETS tqhost RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY schemas/ DESTINATION ${TQ_SHARE}/schemas)
install(DIRECTORY actions/ DESTINATION ${TQ_SHARE}/actions)
install(DIRECTORY web/ DESTINATION ${TQ_SHARE}/web OPTIONAL)
install(DIRECTORY plugins/lib DESTINATION ${TQ_SHARE}/plugins)
install(FILES plugins/README.md DESTINATION ${TQ_SHARE}/plugins)
install(FILES ${TQ_PACKAGE_FILES} DESTINATION ${TQ_SHARE}/packages)
# Each RST plugin from its package, checked as any package is (digests, manifest schema), by
# the tqhost just built, into the staging folder (DESTDIR and --prefix honoured).
foreach(tqp ${TQ_PACKAGE_FILES})
  install(CODE "
    set(plugins \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${TQ_SHARE}/plugins\")
    file(MAKE_DIRECTORY \"\${plugins}\")
    message(STATUS \"Installing plugin package: ${tqp} into \${plugins}\")
    execute_process(COMMAND \${CMAKE_COMMAND} -E env TQHOST_CONFIG=/dev/null
                            \"TQHOST_PLUGINS=\${plugins}\"
                            \"$<TARGET_FILE:tqhost>\" plugin install --allow-unsigned --force \"${tqp}\"
                    RESULT_VARIABLE rc OUTPUT_QUIET)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR \"tqhost plugin install ${tqp} failed (exit \${rc})\")
    endif()")
endforeach()
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
file(GLOB TQ_DOCS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${TQ_DOCS} packaging/tqhost.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${CMAKE_BINARY_DIR}/tqhost.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES scripts/tqhost.bash-completion DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME tqhost)
