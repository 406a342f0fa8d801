"""Times NumPy's training loop of the article's experiment (1000 epochs × 4 samples), the code of
shared/seed/article_script.py unchanged but for the timer. Prints a JSON list of seconds per run.
Run as a script it prints its own timings; bench/py_worker.py imports train() to run it in the
interleaved schedule of bench/run.ts. Not a test."""
import json, sys, time
import numpy as np
from scipy import signal

def tanh(x): return np.tanh(x)
def d_tanh(x): return 1 - np.tanh(x) ** 2
def log(x): return 1/(1 + np.exp(-1*x))
def d_log(x): return log(x) * ( 1 - log(x) )

X = [np.array([[0,0,0],[0,0,0],[0,0,0]]), np.array([[1,1,1],[0,0,0],[0,0,0]]),
     np.array([[0,0,0],[1,1,1],[1,1,1]]), np.array([[1,1,1],[1,1,1],[1,1,1]])]
Y = np.array([[0.53],[0.77],[0.88],[1.1]])

def train():
    np.random.seed(598765)
    w1 = np.random.randn(2,2) * 4
    w2 = np.random.randn(4,1) * 4
    for iter in range(1000):
        for i in range(len(X)):
            layer_1 = signal.convolve2d(X[i],w1,'valid')
            layer_1_act = tanh(layer_1)
            layer_1_act_vec = np.expand_dims(np.reshape(layer_1_act,-1),axis=0)
            layer_2 = layer_1_act_vec.dot(w2)
            layer_2_act = log(layer_2)
            grad_2_part_1 = layer_2_act- Y[i]
            grad_2_part_2 = d_log(layer_2)
            grad_2_part_3 = layer_1_act_vec
            grad_2 =   grad_2_part_3.T.dot(grad_2_part_1*grad_2_part_2)
            grad_1_part_1 = (grad_2_part_1*grad_2_part_2).dot(w2.T)
            grad_1_part_2 = d_tanh(layer_1)
            grad_1_part_3 = X[i]
            grad_1_part_1_reshape = np.reshape(grad_1_part_1,(2,2))
            grad_1_temp_1 = grad_1_part_1_reshape * grad_1_part_2
            grad_1 = np.rot90(signal.convolve2d(grad_1_part_3, np.rot90(grad_1_temp_1, 2),'valid'), 2)
            w2 = w2 - grad_2 * 0.7
            w1 = w1 - grad_1 * 0.7

if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    train()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        train()
        times.append(time.perf_counter() - t0)
    print(json.dumps(times))
