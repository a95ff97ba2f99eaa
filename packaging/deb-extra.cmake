# deb-extra.cmake (CPACK_PRE_BUILD_SCRIPTS): adds to the package's staging tree what only a
# system install has: the default host configuration as /etc/tqhost/tqhost.yaml (a conffile)
# and the systemd unit. CPACK_TEMPORARY_INSTALL_DIRECTORY is the tree that becomes the .deb.
set(root "${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
if(NOT root)
  message(FATAL_ERROR "deb-extra.cmake: CPACK_TEMPORARY_INSTALL_DIRECTORY is not set")
endif()
file(MAKE_DIRECTORY "${root}/etc/tqhost" "${root}/usr/lib/systemd/system")
file(COPY_FILE "${CPACK_TQ_PACKAGING_DIR}/tqhost.yaml" "${root}/etc/tqhost/tqhost.yaml")
file(COPY_FILE "${CPACK_TQ_PACKAGING_DIR}/tqhost.service"
     "${root}/usr/lib/systemd/system/tqhost.service")
