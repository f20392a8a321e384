// The system zlib (Debian: zlib1g-dev), for inflating gzip-compressed input files.
#include <zlib.h>
