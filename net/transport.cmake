# The network engine: sockets, frames and timers through the io_uring reactor.
# Included from net/CMakeLists.txt (paths are relative to this directory).
add_library(sluice_net STATIC
  ${CMAKE_CURRENT_LIST_DIR}/buffer_ring.cc
  ${CMAKE_CURRENT_LIST_DIR}/connection.cc
  ${CMAKE_CURRENT_LIST_DIR}/listener.cc
  ${CMAKE_CURRENT_LIST_DIR}/outgoing_frame.cc
  ${CMAKE_CURRENT_LIST_DIR}/server.cc
  ${CMAKE_CURRENT_LIST_DIR}/timer.cc
)
target_link_libraries(sluice_net PUBLIC sluice_reactor)
