# package.cmake: `cpack -G DEB` (run in the build folder) makes tqhost_VERSION_ARCH.deb: the
# tree of install.cmake under /usr, plus what only a system install has (added to the staging
# tree by packaging/deb-extra.cmake, so that `cmake --install --prefix` never writes to /etc):
# /etc/tqhost/tqhost.yaml (a conffile) and /usr/lib/systemd/system/tqhost.service. The
# maintainer scripts (packaging/postinst, prerm, postrm) make the user tqhost and
# /var/lib/tqhost, and remove them on purge only. Depends: from dpkg-shlibdeps (dpkg-dev).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tqhost)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "tqhost")
set(CPACK_PACKAGE_CONTACT "tqhost maintainers <tqhost@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "ThreatQ-style threat-intelligence host: library, TAXII feeds, Lua plugins, REST API")
set(CPACK_PACKAGE_DESCRIPTION
    "tqhost keeps a threat library (SQLite), polls TAXII 2.1 feeds, runs enrichment plugins\nwritten in Lua 5.4 and serves a ThreatQ-shaped REST API over HTTPS (tqhost.service).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The maintainer scripts' tools: adduser (postinst), openssl is not needed (serve makes its
# certificate with GnuTLS), runuser is in util-linux (essential).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/postinst ${CMAKE_SOURCE_DIR}/packaging/prerm
    ${CMAKE_SOURCE_DIR}/packaging/postrm ${CMAKE_SOURCE_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(TQ_PACKAGING_DIR ${CMAKE_SOURCE_DIR}/packaging)
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_SOURCE_DIR}/packaging/deb-extra.cmake)
# deb-extra.cmake reads these from CPackConfig.cmake.
set(CPACK_TQ_PACKAGING_DIR ${CMAKE_SOURCE_DIR}/packaging)
set(CPACK_SOURCE_IGNORE_FILES "/build.*/;/\\\\.git/")
include(CPack)
