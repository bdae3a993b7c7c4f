# cython: language_level=3
"""Datagrams in and out of an IPv4 UDP socket for engine/sip/transport.py, with fewer system
calls and objects than Python's socket methods (a few of which a complete call flow makes a
dozen times each):

- `Receiver.receive()` reads up to `count` waiting datagrams with one recvmmsg(2), and gives
  the same (host, port) tuple again while they come from the same address (the PBX);
- `Sender.send(data, address)` is sendto(2) with the address converted once: Python's
  `socket.sendto` parses the (host, port) tuple (getaddrinfo) for every datagram.

Errors are raised as `socket.sendto` / `recvfrom` raise them (OSError and its subclasses,
BlockingIOError when the kernel's send buffer is full). Nothing here is used for IPv6
sockets: the transport keeps Python's methods there.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_FromString
from cpython.exc cimport PyErr_SetFromErrno
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport uint16_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memset

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        pass
    struct iovec:
        void* iov_base
        size_t iov_len
    struct msghdr:
        void* msg_name
        socklen_t msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, void* timeout)
    ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to,
                   socklen_t tolen)
    int MSG_DONTWAIT
    int AF_INET

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        unsigned short sin_family
        uint16_t sin_port
        in_addr sin_addr
    uint16_t ntohs(uint16_t)
    uint16_t htons(uint16_t)

cdef extern from "<arpa/inet.h>" nogil:
    const char* inet_ntop(int af, const void* src, char* dst, socklen_t size)
    int inet_pton(int af, const char* src, void* dst)

DEF MAX_DATAGRAM = 65536


cdef class Receiver:
    """Reads a socket's waiting datagrams `count` at a time (the socket stays the caller's)."""

    cdef int fd
    cdef unsigned int count
    cdef mmsghdr* msgs
    cdef iovec* iovs
    cdef sockaddr_in* names
    cdef char* buffers
    cdef sockaddr_in last_name
    cdef object last_source

    def __cinit__(self, int fd, unsigned int count=32):
        self.fd = fd
        self.count = count
        self.msgs = <mmsghdr*>malloc(count * sizeof(mmsghdr))
        self.iovs = <iovec*>malloc(count * sizeof(iovec))
        self.names = <sockaddr_in*>malloc(count * sizeof(sockaddr_in))
        # Untouched pages cost nothing: a datagram fills only what it needs of its slot.
        self.buffers = <char*>malloc(count * MAX_DATAGRAM)
        if not (self.msgs and self.iovs and self.names and self.buffers):
            raise MemoryError()
        memset(&self.last_name, 0, sizeof(sockaddr_in))
        self.last_source = None
        memset(self.msgs, 0, count * sizeof(mmsghdr))
        cdef unsigned int i
        for i in range(count):
            self.iovs[i].iov_base = self.buffers + i * MAX_DATAGRAM
            self.iovs[i].iov_len = MAX_DATAGRAM
            self.msgs[i].msg_hdr.msg_name = &self.names[i]
            self.msgs[i].msg_hdr.msg_iov = &self.iovs[i]
            self.msgs[i].msg_hdr.msg_iovlen = 1

    def __dealloc__(self):
        free(self.msgs)
        free(self.iovs)
        free(self.names)
        free(self.buffers)

    @property
    def count(self):
        return self.count

    def receive(self):
        """The datagrams waiting, up to `count`, as a list of (data, (host, port)); an empty
        list when there are none. Fewer than `count` means the socket had no more."""
        cdef unsigned int i
        cdef int got
        cdef char host[16]
        cdef sockaddr_in* name
        for i in range(self.count):  # in and out: the kernel writes the length it used
            self.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in)
        while True:
            with nogil:
                got = recvmmsg(self.fd, self.msgs, self.count, MSG_DONTWAIT, NULL)
            if got >= 0:
                break
            if errno == EINTR:
                continue
            if errno == EAGAIN:  # EWOULDBLOCK on Linux
                return []
            PyErr_SetFromErrno(OSError)
        cdef list out = []
        for i in range(<unsigned int>got):
            name = &self.names[i]
            if (self.last_source is None
                    or memcmp(name, &self.last_name, sizeof(sockaddr_in)) != 0):
                if (name.sin_family != AF_INET
                        or inet_ntop(AF_INET, &name.sin_addr, host, 16) == NULL):
                    continue  # not from an IPv4 peer (cannot happen on an IPv4 socket)
                source = (PyUnicode_FromString(host), ntohs(name.sin_port))
                self.last_name = name[0]
                self.last_source = source
            else:
                source = self.last_source
            out.append((PyBytes_FromStringAndSize(self.buffers + i * MAX_DATAGRAM,
                                                  self.msgs[i].msg_len), source))
        return out


cdef class Sender:
    """sendto(2) on a socket (the caller's), the destination converted once while it is the
    same as the time before; another (host, port) is converted again, and one that is not a
    numeric IPv4 address goes through Python's `sendto` (`fallback`)."""

    cdef int fd
    cdef object fallback
    cdef object last_destination
    cdef sockaddr_in last_name

    def __cinit__(self, int fd, fallback):
        self.fd = fd
        self.fallback = fallback
        self.last_destination = None
        memset(&self.last_name, 0, sizeof(sockaddr_in))

    def send(self, bytes data, destination):
        cdef ssize_t sent
        cdef const char* buf = PyBytes_AS_STRING(data)
        cdef size_t size = PyBytes_GET_SIZE(data)
        if destination is not self.last_destination and destination != self.last_destination:
            host, port = destination[0], destination[1]
            memset(&self.last_name, 0, sizeof(sockaddr_in))
            if (type(host) is not str or type(port) is not int or not 0 <= port <= 65535
                    or inet_pton(AF_INET, (<str>host).encode("ascii", "replace"),
                                 &self.last_name.sin_addr) != 1):
                self.last_destination = None
                return self.fallback(data, destination)
            self.last_name.sin_family = AF_INET
            self.last_name.sin_port = htons(<uint16_t>port)
            self.last_destination = destination
        while True:
            with nogil:
                sent = sendto(self.fd, buf, size, 0, <const sockaddr*>&self.last_name,
                              sizeof(sockaddr_in))
            if sent >= 0:
                return sent
            if errno != EINTR:
                PyErr_SetFromErrno(OSError)
