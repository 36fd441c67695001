// Threads that each catch NullPointerExceptions (the JVM turns the SIGSEGV of a null access into
// one, through its own signal handler) and build some garbage; prints one deterministic line.
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

public class Threads {
    static final AtomicInteger caught = new AtomicInteger();

    static int poke(Object o) {
        return o.hashCode();
    }

    public static void main(String[] args) throws Exception {
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            Thread th = new Thread(() -> {
                StringBuilder sb = new StringBuilder();
                for (int i = 0; i < 2000; i++) {
                    Object o = (i % 2 == 0) ? null : sb;
                    try {
                        poke(o);
                    } catch (NullPointerException e) {
                        caught.incrementAndGet();
                    }
                    sb.append(i % 10);
                }
            });
            threads.add(th);
            th.start();
        }
        for (Thread th : threads) {
            th.join();
        }
        System.out.println("caught " + caught.get());
    }
}
