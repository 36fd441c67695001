/* A library another user could plant in a shared cache: its constructor creates the file named
 * by PLANTED_MARKER, which shows it was loaded. Built with -shared -fPIC. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void planted(void)
{
    const char *m = getenv("PLANTED_MARKER");
    if (m) {
        int fd = open(m, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            (void)write(fd, "loaded\n", 7);
            close(fd);
        }
    }
}
