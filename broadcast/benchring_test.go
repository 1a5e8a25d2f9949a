package broadcast

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// benchRing reads benchConns like benchLoop, through io_uring instead of
// epoll: one multishot recv per connection with buffers the kernel picks
// from a registered ring, so a received message costs no system call of
// its own (completions are reaped in batches from shared memory). It must
// be set up and run on one locked OS thread (the ring is single-issuer,
// its work deferred to io_uring_enter): run does both.
type benchRing struct {
	fd      int
	sqMem   []byte
	cqMem   []byte
	sqeMem  []byte
	sqHead  *uint32
	sqTail  *uint32
	sqMask  uint32
	sqArray unsafe.Pointer
	sqes    unsafe.Pointer
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    unsafe.Pointer
	pending uint32 // SQEs filled but not yet submitted

	bufRing  []byte // struct io_uring_buf entries, page aligned
	bufMem   []byte
	bufMask  uint16
	bufTail  uint16
	bufSlot0 uint16 // bid in entry 0, whose last 2 bytes are the tail

	conns []*benchConn
	fds   []int
	live  int
}

const (
	sysIOURingSetup    = 425
	sysIOURingEnter    = 426
	sysIOURingRegister = 427

	ioringSetupCQSize       = 1 << 3
	ioringSetupSingleIssuer = 1 << 12
	ioringSetupDeferTaskrun = 1 << 13
	ioringFeatSingleMmap    = 1 << 0
	ioringOffSQRing         = 0
	ioringOffCQRing         = 0x8000000
	ioringOffSQEs           = 0x10000000
	ioringEnterGetEvents    = 1 << 0
	ioringRegisterPbufRing  = 22
	ioringOpRecv            = 27
	iosqeBufferSelect       = 1 << 5
	ioringRecvMultishot     = 1 << 1
	ioringCQEFBuffer        = 1 << 0
	ioringCQEFMore          = 1 << 1

	ringSQEntries = 4096
	ringCQEntries = 32768
	ringBufs      = 16384 // power of 2
	ringBufSize   = 4096
)

type ioUringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		resv2                                                           uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		resv2                                                           uint64
	}
}

type ioUringSQE struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	opFlags  uint32
	userData uint64
	bufGroup uint16
	persona  uint16
	spliceFd int32
	addr3    uint64
	pad      uint64
}

type ioUringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

type ioUringBufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	pad         uint16
	resv        [3]uint64
}

// ringSupported reports whether this kernel gives a benchRing what it
// needs (it sets one up and closes it).
func ringSupported() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r := &benchRing{}
		err := r.setup()
		r.close()
		errc <- err
	}()
	return <-errc
}

// setup creates the ring and its buffers; it runs on the locked thread of run.
func (r *benchRing) setup() error {
	p := ioUringParams{flags: ioringSetupCQSize | ioringSetupSingleIssuer | ioringSetupDeferTaskrun, cqEntries: ringCQEntries}
	fd, _, errno := syscall.Syscall(sysIOURingSetup, ringSQEntries, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return fmt.Errorf("io_uring_setup: %w", errno)
	}
	r.fd = int(fd)
	fail := func(err error) error { r.close(); return err }
	if p.features&ioringFeatSingleMmap == 0 {
		return fail(errors.New("io_uring without IORING_FEAT_SINGLE_MMAP"))
	}
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(ioUringCQE{})))
	size := max(sqSize, cqSize)
	mem, err := syscall.Mmap(r.fd, ioringOffSQRing, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return fail(fmt.Errorf("mmap rings: %w", err))
	}
	r.sqMem, r.cqMem = mem, mem
	if r.sqeMem, err = syscall.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(ioUringSQE{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		return fail(fmt.Errorf("mmap sqes: %w", err))
	}
	base := unsafe.Pointer(&mem[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqArray = unsafe.Add(base, p.sqOff.array)
	r.sqes = unsafe.Pointer(&r.sqeMem[0])
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Add(base, p.cqOff.cqes)

	// The provided-buffer ring: page-aligned memory of its own.
	if r.bufRing, err = syscall.Mmap(-1, 0, ringBufs*16, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_POPULATE); err != nil {
		return fail(fmt.Errorf("mmap buffer ring: %w", err))
	}
	if r.bufMem, err = syscall.Mmap(-1, 0, ringBufs*ringBufSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_POPULATE); err != nil {
		return fail(fmt.Errorf("mmap buffers: %w", err))
	}
	reg := ioUringBufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&r.bufRing[0]))), ringEntries: ringBufs}
	if _, _, errno := syscall.Syscall6(sysIOURingRegister, uintptr(r.fd), ioringRegisterPbufRing, uintptr(unsafe.Pointer(&reg)), 1, 0, 0); errno != 0 {
		return fail(fmt.Errorf("io_uring_register(PBUF_RING): %w", errno))
	}
	r.bufMask = ringBufs - 1
	for bid := range ringBufs {
		r.putBuf(uint16(bid))
	}
	r.publishBufs()
	return nil
}

// putBuf queues buffer bid for the kernel (published by publishBufs).
func (r *benchRing) putBuf(bid uint16) {
	slot := r.bufTail & r.bufMask
	e := unsafe.Pointer(&r.bufRing[int(slot)*16])
	*(*uint64)(e) = uint64(uintptr(unsafe.Pointer(&r.bufMem[int(bid)*ringBufSize])))
	*(*uint32)(unsafe.Add(e, 8)) = ringBufSize
	if slot == 0 {
		r.bufSlot0 = bid // entry 0's bid shares a word with the tail
	} else {
		*(*uint16)(unsafe.Add(e, 12)) = bid
	}
	r.bufTail++
}

// publishBufs makes the queued buffers visible: entry 0's bid and the
// ring tail, in one atomic store.
func (r *benchRing) publishBufs() {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&r.bufRing[12])), uint32(r.bufSlot0)|uint32(r.bufTail)<<16)
}

// add registers c (before run).
func (r *benchRing) add(c *benchConn) error {
	r.conns = append(r.conns, c)
	r.fds = append(r.fds, c.fd)
	r.live++
	return nil
}

// arm queues a multishot recv for connection i.
func (r *benchRing) arm(i int) error {
	if r.pending == ringSQEntries {
		if err := r.enter(0); err != nil {
			return err
		}
	}
	tail := atomic.LoadUint32(r.sqTail) + r.pending
	idx := tail & r.sqMask
	sqe := (*ioUringSQE)(unsafe.Add(r.sqes, uintptr(idx)*unsafe.Sizeof(ioUringSQE{})))
	*sqe = ioUringSQE{opcode: ioringOpRecv, flags: iosqeBufferSelect, ioprio: ioringRecvMultishot,
		fd: int32(r.conns[i].fd), userData: uint64(i)}
	*(*uint32)(unsafe.Add(r.sqArray, uintptr(idx)*4)) = idx
	r.pending++
	return nil
}

// enter submits the queued SQEs and, with wait, waits for a completion.
func (r *benchRing) enter(wait uint32) error {
	n := r.pending
	atomic.StoreUint32(r.sqTail, atomic.LoadUint32(r.sqTail)+n)
	r.pending = 0
	var flags uintptr
	if wait > 0 {
		flags = ioringEnterGetEvents
	}
	for {
		_, _, errno := syscall.Syscall6(sysIOURingEnter, uintptr(r.fd), uintptr(n), uintptr(wait), flags, 0, 0)
		if errno == syscall.EINTR {
			n = 0
			continue
		}
		if errno != 0 {
			return fmt.Errorf("io_uring_enter: %w", errno)
		}
		return nil
	}
}

// run reads until every connection has ended, like benchLoop.run.
func (r *benchRing) run(fn func(i int, op byte, payload []byte)) {
	runtime.LockOSThread() // the ring is single-issuer: one thread
	defer runtime.UnlockOSThread()
	defer r.close()
	if err := r.setup(); err != nil {
		fmt.Fprintln(os.Stderr, "bench client:", err)
		for i := range r.conns {
			r.end(i)
		}
		return
	}
	for i, c := range r.conns {
		if len(c.pending) > 0 {
			if err := c.consume(nil, func(op byte, p []byte) { fn(i, op, p) }); err != nil {
				r.end(i)
				continue
			}
		}
		if err := r.arm(i); err != nil {
			fmt.Fprintln(os.Stderr, "bench client:", err)
			return
		}
	}
	for r.live > 0 {
		if err := r.enter(1); err != nil {
			fmt.Fprintln(os.Stderr, "bench client:", err)
			return
		}
		head := atomic.LoadUint32(r.cqHead)
		tail := atomic.LoadUint32(r.cqTail)
		for ; head != tail; head++ {
			cqe := (*ioUringCQE)(unsafe.Add(r.cqes, uintptr(head&r.cqMask)*unsafe.Sizeof(ioUringCQE{})))
			i, res, flags := int(cqe.userData), cqe.res, cqe.flags
			c := r.conns[i]
			if flags&ioringCQEFBuffer != 0 {
				bid := uint16(flags >> 16)
				if res > 0 && c != nil {
					p := r.bufMem[int(bid)*ringBufSize : int(bid)*ringBufSize+int(res)]
					if err := c.consume(p, func(op byte, p []byte) { fn(i, op, p) }); err != nil {
						r.end(i)
					}
				}
				r.putBuf(bid)
			}
			if r.conns[i] == nil || flags&ioringCQEFMore != 0 {
				continue
			}
			// The multishot recv ended: out of buffers (re-arm) or the
			// connection ended.
			if res > 0 || res == -int32(syscall.ENOBUFS) {
				if err := r.arm(i); err != nil {
					fmt.Fprintln(os.Stderr, "bench client:", err)
					return
				}
				continue
			}
			r.end(i)
		}
		atomic.StoreUint32(r.cqHead, head)
		r.publishBufs()
	}
}

// end closes connection i (its recv, if any, completes with an error).
func (r *benchRing) end(i int) {
	if r.conns[i] == nil {
		return
	}
	_ = syscall.Close(r.conns[i].fd)
	r.conns[i] = nil
	r.live--
}

// shutdown makes every connection end (safe from another goroutine).
func (r *benchRing) shutdown() {
	for _, fd := range r.fds {
		_ = syscall.Shutdown(fd, syscall.SHUT_RDWR)
	}
}

func (r *benchRing) close() {
	for _, m := range [][]byte{r.sqeMem, r.sqMem, r.bufRing, r.bufMem} {
		if m != nil {
			_ = syscall.Munmap(m)
		}
	}
	r.sqeMem, r.sqMem, r.cqMem, r.bufRing, r.bufMem = nil, nil, nil, nil, nil
	if r.fd > 0 {
		_ = syscall.Close(r.fd)
	}
	r.fd = 0
}
