// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/flow bytebuf: protobuf-c messages to and from gRPC byte buffers. Kept
 * apart from codec.c so that code using only the names and the batch
 * builder (segctl's local observe) does not pull in libgrpc.
 */
#include "flow.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

struct grpc_byte_buffer *flow_pack(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	grpc_slice s = grpc_slice_malloc(len);
	grpc_byte_buffer *bb;

	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

ProtobufCMessage *flow_unpack(const ProtobufCMessageDescriptor *desc, struct grpc_byte_buffer *bb,
			      ProtobufCAllocator *alloc)
{
	grpc_byte_buffer_reader r;
	ProtobufCMessage *m;
	grpc_slice s;

	if (!bb || !grpc_byte_buffer_reader_init(&r, bb))
		return NULL;
	s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	m = protobuf_c_message_unpack(desc, alloc, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	return m;
}
